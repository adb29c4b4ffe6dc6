"""The fake provider server, checked with plain httpx (no batchdeck code).

One subprocess serves the module (that also exercises ``run_fake_server``);
an autouse fixture resets it to its start-up options before each test.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from tests.fakeserver._dialect import estimate_tokens, go_duration
from tests.fakeserver._schema import instance_of, invalid_instance_of
from tests.fakeserver.fixtures import REPO_ROOT, FakeServer, run_fake_server, serve_in_process

KEY = "test-key"
PROVIDERS = ("openai", "anthropic", "gemini")
PERSON_SCHEMA: dict[str, Any] = {
    "$defs": {
        "Role": {"type": "string", "enum": ["admin", "user"]},
        "Tag": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    },
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "score": {"type": "number", "exclusiveMinimum": 0.5},
        "role": {"$ref": "#/$defs/Role"},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 2},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "active": {"type": "boolean"},
        "when": {"type": "string", "format": "date-time"},
        "kind": {"const": "person"},
    },
    "required": ["name", "age", "score", "role", "tags", "nickname", "active", "when", "kind"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server: FakeServer) -> None:
    server.reset(config=True)


@pytest.fixture
def http(server: FakeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        yield client


def send(
    http: httpx.Client,
    provider: str,
    prompt: str = "hello",
    *,
    model: str | None = None,
    key: str | None = KEY,
    schema: dict[str, Any] | None = None,
    max_tokens: int | None = 100,
    timeout: float | None = None,
) -> httpx.Response:
    """One request in ``provider``'s real wire format."""
    path, headers, body = build(
        provider, prompt, model=model, key=key, schema=schema, max_tokens=max_tokens
    )
    return http.post(
        path,
        headers=headers,
        json=body,
        timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
    )


def build(
    provider: str,
    prompt: str,
    *,
    model: str | None,
    key: str | None,
    schema: dict[str, Any] | None,
    max_tokens: int | None,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    if provider == "openai":
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        body: dict[str, Any] = {
            "model": model or "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": prompt},
            ],
        }
        if max_tokens is not None:
            body["max_completion_tokens"] = max_tokens
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "result", "schema": schema, "strict": True},
            }
        return "/v1/chat/completions", headers, body
    if provider == "anthropic":
        headers = {"anthropic-version": "2023-06-01"} | ({} if key is None else {"x-api-key": key})
        body = {
            "model": model or "claude-haiku-4-5",
            "max_tokens": max_tokens,
            "system": "be brief",
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        }
        if schema is not None:
            body["tools"] = [{"name": "result", "input_schema": schema}]
            body["tool_choice"] = {"type": "tool", "name": "result"}
        return "/v1/messages", headers, body
    headers = {} if key is None else {"x-goog-api-key": key}
    config: dict[str, Any] = {} if max_tokens is None else {"maxOutputTokens": max_tokens}
    if schema is not None:
        config |= {"responseMimeType": "application/json", "responseJsonSchema": schema}
    body = {
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": config,
    }
    return f"/v1beta/models/{model or 'gemini-2.5-flash'}:generateContent", headers, body


def text_of(provider: str, body: dict[str, Any]) -> str:
    if provider == "openai":
        content: str = body["choices"][0]["message"]["content"]
        return content
    if provider == "anthropic":
        text: str = body["content"][0]["text"]
        return text
    part: str = body["candidates"][0]["content"]["parts"][0]["text"]
    return part


def structured_of(provider: str, body: dict[str, Any]) -> Any:
    if provider == "anthropic":
        block = body["content"][0]
        assert block["type"] == "tool_use" and body["stop_reason"] == "tool_use"
        return block["input"]
    return orjson.loads(text_of(provider, body))


# -- success shapes --


def test_openai_completion_shape(http: httpx.Client) -> None:
    first = send(http, "openai", "tell me a story")
    body = first.json()
    assert first.status_code == 200
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] and choice["message"]["refusal"] is None
    usage = body["usage"]
    assert usage["prompt_tokens"] == -(-len(b"be brief\ntell me a story") // 4)
    assert usage["completion_tokens"] == 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + 16
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    again = send(http, "openai", "tell me a story").json()
    assert text_of("openai", again) == choice["message"]["content"]
    other = send(http, "openai", "tell me another").json()
    assert text_of("openai", other) != choice["message"]["content"]


def test_anthropic_message_shape(http: httpx.Client) -> None:
    body = send(http, "anthropic").json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"][0]["type"] == "text" and body["content"][0]["text"]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"]["input_tokens"] == 4
    assert body["usage"]["output_tokens"] == 16
    assert body["usage"]["cache_read_input_tokens"] == 0


def test_gemini_generate_content_shape(http: httpx.Client) -> None:
    body = send(http, "gemini").json()
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"][0]["text"]
    usage = body["usageMetadata"]
    assert (usage["promptTokenCount"], usage["candidatesTokenCount"]) == (4, 16)
    assert usage["totalTokenCount"] == 20


@pytest.mark.parametrize("provider", PROVIDERS)
def test_structured_output_conforms(http: httpx.Client, provider: str) -> None:
    response = send(http, provider, schema=PERSON_SCHEMA)
    assert response.status_code == 200
    jsonschema.validate(structured_of(provider, response.json()), PERSON_SCHEMA)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_schema_is_counted_as_input_as_the_hosted_apis_do(
    http: httpx.Client, provider: str
) -> None:
    plain = send(http, provider, "x" * 400).json()
    shaped = send(http, provider, "x" * 400, schema=PERSON_SCHEMA).json()
    schema_tokens = estimate_tokens(orjson.dumps(PERSON_SCHEMA).decode())
    assert _input_tokens(provider, shaped) == _input_tokens(provider, plain) + schema_tokens


def _input_tokens(provider: str, body: dict[str, Any]) -> int:
    if provider == "openai":
        return int(body["usage"]["prompt_tokens"])
    if provider == "anthropic":
        return int(body["usage"]["input_tokens"])
    return int(body["usageMetadata"]["promptTokenCount"])


def test_anthropic_output_config_and_gemini_openapi_schema(http: httpx.Client) -> None:
    _, headers, body = build("anthropic", "x", model=None, key=KEY, schema=None, max_tokens=50)
    body["output_config"] = {"format": {"type": "json_schema", "schema": PERSON_SCHEMA}}
    answer = http.post("/v1/messages", headers=headers, json=body).json()
    jsonschema.validate(orjson.loads(answer["content"][0]["text"]), PERSON_SCHEMA)

    path, headers, body = build("gemini", "x", model=None, key=KEY, schema=None, max_tokens=50)
    body["generationConfig"] = {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"label": {"type": "STRING", "enum": ["spam", "ham"]}},
            "required": ["label"],
        },
    }
    answer = http.post(path, headers=headers, json=body).json()
    assert orjson.loads(text_of("gemini", answer)) == {"label": "spam"}


def test_output_tokens_options_and_cached_tokens(server: FakeServer, http: httpx.Client) -> None:
    server.configure(output_fraction=0.5, cached_fraction=0.5)
    body = send(http, "openai", "x" * 400, max_tokens=40).json()
    assert body["usage"]["completion_tokens"] == 20
    assert (
        body["usage"]["prompt_tokens_details"]["cached_tokens"]
        == body["usage"]["prompt_tokens"] // 2
    )
    server.configure(output_fraction=None, output_tokens=50)
    assert send(http, "openai", max_tokens=10).json()["choices"][0]["finish_reason"] == "length"
    assert send(http, "anthropic", max_tokens=10).json()["stop_reason"] == "max_tokens"
    gemini = send(http, "gemini", max_tokens=10).json()
    assert gemini["candidates"][0]["finishReason"] == "MAX_TOKENS"


LONG_SYSTEM = "Answer in one word, from the list of labels below. " * 100
"""Over 1,024 tokens: long enough for every provider to cache."""


def _cached(provider: str, usage: dict[str, Any]) -> tuple[int, int]:
    """(cache reads, billed cache writes) as ``provider`` reports them."""
    if provider == "openai":
        return usage["prompt_tokens_details"]["cached_tokens"], 0
    if provider == "anthropic":
        return usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
    return usage.get("cachedContentTokenCount", 0), 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_long_shared_system_prompt_is_read_from_the_cache_the_second_time(
    http: httpx.Client, provider: str
) -> None:
    path, headers, body = build(provider, "hello", model=None, key=KEY, schema=None, max_tokens=10)
    if provider == "openai":
        body["messages"][0]["content"] = LONG_SYSTEM
    elif provider == "anthropic":  # cached only where marked, as Anthropic does
        body["system"] = [
            {"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}
        ]
    else:
        body["systemInstruction"] = {"parts": [{"text": LONG_SYSTEM}]}
    usage_key = "usageMetadata" if provider == "gemini" else "usage"
    first, second = (http.post(path, headers=headers, json=body).json()[usage_key] for _ in "12")
    prefix = len(LONG_SYSTEM) // 4
    billed_write = prefix if provider == "anthropic" else 0
    assert _cached(provider, first) == (0, billed_write)
    assert _cached(provider, second) == (prefix, 0)
    if provider == "anthropic":  # reads and writes are apart from input_tokens
        assert second["input_tokens"] == first["input_tokens"] < prefix


def test_latency_is_applied(server: FakeServer, http: httpx.Client) -> None:
    server.configure(latency_ms=150)
    started = time.monotonic()
    assert send(http, "openai").status_code == 200
    assert time.monotonic() - started >= 0.15


# -- auth, models, bad requests --


@pytest.mark.parametrize(
    ("provider", "status", "marker"),
    [
        ("openai", 401, "invalid_api_key"),
        ("anthropic", 401, "authentication_error"),
        ("gemini", 400, "API_KEY_INVALID"),
    ],
)
def test_wrong_key(http: httpx.Client, provider: str, status: int, marker: str) -> None:
    response = send(http, provider, key="sk-wrong-1234")
    assert response.status_code == status
    assert marker in response.text
    assert "sk-wrong" not in response.text


@pytest.mark.parametrize(
    ("provider", "status"), [("openai", 401), ("anthropic", 401), ("gemini", 403)]
)
def test_missing_key(http: httpx.Client, provider: str, status: int) -> None:
    assert send(http, provider, key=None).status_code == status


@pytest.mark.parametrize(
    ("provider", "marker"),
    [("openai", "model_not_found"), ("anthropic", "not_found_error"), ("gemini", "NOT_FOUND")],
)
def test_unknown_model(server: FakeServer, http: httpx.Client, provider: str, marker: str) -> None:
    response = send(http, provider, model="missing-model")
    assert response.status_code == 404 and marker in response.text
    server.configure(missing_models=["retired-1"])
    assert send(http, provider, model="retired-1").status_code == 404


def test_bad_requests(http: httpx.Client) -> None:
    _, headers, body = build("anthropic", "x", model=None, key=KEY, schema=None, max_tokens=10)
    del headers["anthropic-version"]
    response = http.post("/v1/messages", headers=headers, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    openai = http.post(
        "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, content=b"{not json"
    )
    assert openai.status_code == 400 and openai.json()["error"]["type"] == "invalid_request_error"
    assert send(http, "gemini", "[[fault:nonsense]]").status_code == 400
    for provider in PROVIDERS:
        path, headers, body = build(
            provider, "x", model=None, key=KEY, schema=None, max_tokens=None
        )
        if provider == "gemini":
            body["generationConfig"] = {"maxOutputTokens": "ten"}
        else:
            body["max_tokens"] = "ten"
        assert http.post(path, headers=headers, json=body).status_code == 400
    assert http.post("/_reset", json=[1]).status_code == 400


# -- faults --


ERROR_FAULTS = {
    ("openai", "500"): (500, "server_error"),
    ("openai", "503"): (503, "server_error"),
    ("openai", "529"): (503, "server_error"),
    ("openai", "context_length"): (400, "context_length_exceeded"),
    ("openai", "quota"): (429, "insufficient_quota"),
    ("openai", "429"): (429, "rate_limit_exceeded"),
    ("anthropic", "500"): (500, "api_error"),
    ("anthropic", "503"): (503, "api_error"),
    ("anthropic", "529"): (529, "overloaded_error"),
    ("anthropic", "context_length"): (400, "prompt is too long"),
    ("anthropic", "quota"): (400, "specified API usage limits"),
    ("anthropic", "429"): (429, "rate_limit_error"),
    ("gemini", "500"): (500, "INTERNAL"),
    ("gemini", "503"): (503, "UNAVAILABLE"),
    ("gemini", "529"): (503, "UNAVAILABLE"),
    ("gemini", "context_length"): (400, "exceeds the maximum number of tokens"),
    ("gemini", "quota"): (429, "GenerateRequestsPerDayPerProjectPerModel"),
    ("gemini", "429"): (429, "GenerateRequestsPerMinutePerProjectPerModel"),
}


@pytest.mark.parametrize(("provider", "kind"), list(ERROR_FAULTS))
def test_error_faults(http: httpx.Client, provider: str, kind: str) -> None:
    status, marker = ERROR_FAULTS[provider, kind]
    response = send(http, provider, f"[[fault:{kind}]] hi")
    assert response.status_code == status
    assert marker in response.text


def test_retry_signals_of_injected_faults(server: FakeServer, http: httpx.Client) -> None:
    server.configure(fault_retry_after_ms=1500)
    openai = send(http, "openai", "[[fault:429]]")
    assert (openai.headers["retry-after"], openai.headers["retry-after-ms"]) == ("2", "1500")
    assert "retry-after" not in send(http, "openai", "[[fault:quota]]").headers
    assert send(http, "anthropic", "[[fault:429]]").headers["retry-after"] == "2"
    gemini = send(http, "gemini", "[[fault:quota]]").json()["error"]
    retry = [d for d in gemini["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]


def test_refusal(http: httpx.Client) -> None:
    plain = send(http, "openai", "[[fault:refusal]]").json()["choices"][0]
    assert plain["finish_reason"] == "content_filter" and plain["message"]["content"] is None
    structured = send(http, "openai", "[[fault:refusal]]", schema=PERSON_SCHEMA).json()
    message = structured["choices"][0]["message"]
    assert message["refusal"] and message["content"] is None
    assert send(http, "anthropic", "[[fault:refusal]]").json()["stop_reason"] == "refusal"
    gemini = send(http, "gemini", "[[fault:refusal]]").json()
    assert gemini["candidates"][0]["finishReason"] == "SAFETY"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_json_output(http: httpx.Client, provider: str) -> None:
    response = send(http, provider, "[[fault:invalid_json_output]]", schema=PERSON_SCHEMA)
    assert response.status_code == 200
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(structured_of(provider, response.json()), PERSON_SCHEMA)


def test_malformed_body(http: httpx.Client) -> None:
    response = send(http, "openai", "[[fault:malformed]]")
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_truncated_body(http: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        send(http, "anthropic", "[[fault:truncated]]")
    assert send(http, "anthropic").status_code == 200


def test_connection_reset(http: httpx.Client) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        send(http, "gemini", "[[fault:reset]]")
    assert send(http, "gemini").status_code == 200


def test_slow_body_and_hang_time_out(server: FakeServer, http: httpx.Client) -> None:
    server.configure(slow_body_interval_s=0.5, hang_s=0.5)
    path, headers, body = build(
        "openai", "[[fault:slow_body]]", model=None, key=KEY, schema=None, max_tokens=10
    )
    with http.stream("POST", path, headers=headers, json=body, timeout=0.2) as response:
        assert response.status_code == 200  # headers come at once
        with pytest.raises(httpx.ReadTimeout):
            response.read()
    with pytest.raises(httpx.ReadTimeout):
        send(http, "openai", "[[fault:hang]]", timeout=0.2)
    assert server.stats()["faults"] == {"slow_body": 1, "hang": 1}


def test_marker_fails_first_n_sightings_per_model(http: httpx.Client) -> None:
    prompt = "[[fault:500x2]] item 7"
    assert [send(http, "openai", prompt).status_code for _ in range(3)] == [500, 500, 200]
    assert send(http, "openai", prompt, model="gpt-4o").status_code == 500
    assert send(http, "openai", "[[fault:500x2]] item 8").status_code == 500


def test_random_faults_are_seeded(server: FakeServer, http: httpx.Client) -> None:
    server.configure(faults={"500": 0.5}, seed=7)
    first = [send(http, "gemini", f"p{i}").status_code for i in range(20)]
    server.reset()
    second = [send(http, "gemini", f"p{i}").status_code for i in range(20)]
    assert first == second and set(first) == {200, 500}
    assert server.stats()["faults"] == {"500": first.count(500)}


# -- rate limits --


def test_rpm_bucket_answers_429_with_real_signals(server: FakeServer, http: httpx.Client) -> None:
    server.configure(rpm=3)
    statuses = [send(http, "openai").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = send(http, "openai")
    assert int(limited.headers["retry-after"]) == 20
    assert 19_000 < int(limited.headers["retry-after-ms"]) <= 20_000
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    error = limited.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "on requests per min (RPM): Limit 3, Used 3, Requested 1" in error["message"]

    assert [send(http, "anthropic").status_code for _ in range(4)][-1] == 429
    anthropic = send(http, "anthropic")
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    assert int(anthropic.headers["retry-after"]) == 20
    assert anthropic.headers["anthropic-ratelimit-requests-remaining"] == "0"

    assert [send(http, "gemini").status_code for _ in range(4)][-1] == 429
    gemini = send(http, "gemini").json()["error"]
    assert gemini["status"] == "RESOURCE_EXHAUSTED"
    delay = next(d["retryDelay"] for d in gemini["details"] if "retryDelay" in d)
    assert 19 < float(delay.removesuffix("s")) <= 20

    stats = server.stats()
    assert stats["rate_limited"] == 6 and stats["by_status"] == {"200": 9, "429": 6}
    assert stats["by_model"]["openai:gpt-4o-mini"]["rate_limited"] == 2


def test_openai_tpm_is_charged_at_max_of_input_and_max_tokens(
    server: FakeServer, http: httpx.Client
) -> None:
    server.configure(tpm=1000)
    assert send(http, "openai", max_tokens=600).status_code == 200
    limited = send(http, "openai", max_tokens=600)
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "tokens"
    # 1000 - 600 charged, plus what the bucket refilled between the calls (~17 tokens a second)
    assert 400 <= int(limited.headers["x-ratelimit-remaining-tokens"]) < 600
    too_large = send(http, "openai", max_tokens=5000)
    assert too_large.status_code == 429 and "retry-after" not in too_large.headers
    assert "Request too large" in too_large.json()["error"]["message"]
    server.configure(openai_tpm_charge="sum")
    assert send(http, "openai", "x" * 400, max_tokens=900).status_code == 429


def test_anthropic_output_bucket_charges_tokens_produced(
    server: FakeServer, http: httpx.Client
) -> None:
    server.configure(otpm=100, itpm=10_000, output_tokens=40)
    assert [send(http, "anthropic", max_tokens=4000).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    limited = send(http, "anthropic", max_tokens=4000)
    assert "output tokens per minute" in limited.json()["error"]["message"]
    assert limited.headers["anthropic-ratelimit-output-tokens-remaining"] == "20"
    assert limited.headers["anthropic-ratelimit-tokens-remaining"] == "20"
    assert limited.headers["anthropic-ratelimit-input-tokens-limit"] == "10000"


def test_limit_headers_can_be_learned_from_the_first_response(
    server: FakeServer, http: httpx.Client
) -> None:
    server.configure(rpm=600, tpm=100_000, model_limits={"openai:gpt-4o": {"rpm": 50}})
    headers = send(http, "openai", max_tokens=100).headers
    assert headers["x-ratelimit-limit-requests"] == "600"
    assert headers["x-ratelimit-remaining-requests"] == "599"
    assert headers["x-ratelimit-reset-requests"] == "100ms"
    assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert headers["x-ratelimit-remaining-tokens"] == "99900"
    assert headers["x-ratelimit-reset-tokens"] == "60ms"
    assert send(http, "openai", model="gpt-4o").headers["x-ratelimit-limit-requests"] == "50"
    anthropic = send(http, "anthropic").headers
    assert anthropic["anthropic-ratelimit-requests-limit"] == "600"
    reset = datetime.fromisoformat(anthropic["anthropic-ratelimit-requests-reset"])
    assert 0 <= reset.timestamp() - time.time() <= 2
    assert not any(name.startswith("x-ratelimit") for name in send(http, "gemini").headers)


def test_burst_limits_capacity(server: FakeServer, http: httpx.Client) -> None:
    server.configure(rpm=60, burst_s=1)
    assert [send(http, "gemini").status_code for _ in range(2)] == [200, 429]


# -- control endpoints --


def test_stats_reset_and_config(server: FakeServer, http: httpx.Client) -> None:
    for provider in PROVIDERS:
        send(http, provider)
    stats = server.stats()
    assert stats["requests"] == stats["accepted"] == 3 and len(stats["accepted_times"]) == 3
    assert stats["input_tokens"] == 12 and stats["output_tokens"] == 48
    assert stats["in_flight"] == 0 and stats["max_in_flight"] == 1
    config = server.configure(rpm=5, faults={"reset": 0.1})
    assert config["rpm"] == 5 and config["faults"] == {"reset": 0.1}
    server.reset()
    assert server.stats()["requests"] == 0
    assert http.get("/_config").json()["rpm"] == 5
    server.reset(config=True)
    assert http.get("/_config").json()["rpm"] is None
    with pytest.raises(ValueError, match="unknown fault kinds"):
        server.configure(faults={"teapot": 0.1})
    with pytest.raises(ValueError, match="extra"):
        server.configure(rmp=5)


@pytest.mark.anyio
async def test_in_process_server() -> None:
    async with serve_in_process(rpm=1) as server, httpx.AsyncClient(base_url=server.url) as http:
        path, headers, body = build("openai", "hi", model=None, key=KEY, schema=None, max_tokens=5)
        statuses = [(await http.post(path, headers=headers, json=body)).status_code for _ in "ab"]
        assert statuses == [200, 429]
        assert server.stats()["rate_limited"] == 1
        assert server.openai_base_url == f"{server.url}/v1"


def test_cli_rejects_bad_options_before_ready() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.fakeserver", "--rpm", "-5"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "READY" not in result.stdout
    assert "rpm" in result.stderr


# -- helpers --


@pytest.mark.parametrize(
    ("seconds", "spelled"),
    [(0.012, "12ms"), (0.1, "100ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (3725, "1h2m5s")],
)
def test_go_duration(seconds: float, spelled: str) -> None:
    assert go_duration(seconds) == spelled


@pytest.mark.parametrize(
    "schema",
    [
        PERSON_SCHEMA,
        {
            "allOf": [
                {
                    "properties": {"a": {"type": "integer", "exclusiveMinimum": 4}},
                    "required": ["a"],
                },
                {"properties": {"b": {"type": ["null", "string"]}}, "required": ["b"]},
            ]
        },
        {"type": "array", "items": {"type": "number", "maximum": -3}, "minItems": 1},
        {"type": "string", "minLength": 5, "maxLength": 5},
        {"type": "integer", "exclusiveMaximum": 0},
        {"type": "number", "exclusiveMinimum": 1, "maximum": 1.5},
        {"type": "object", "properties": {"x": {"type": "string"}}},
    ],
)
def test_schema_instances(schema: dict[str, Any]) -> None:
    jsonschema.validate(instance_of(schema), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(invalid_instance_of(schema), schema)


def test_reply_ids_are_unique(http: httpx.Client) -> None:
    ids = {send(http, "openai").json()["id"] for _ in range(3)}
    assert len(ids) == 3 and all(re.fullmatch(r"chatcmpl-fake\d{12}", i) for i in ids)


def test_batch_jobs_are_counted_by_custom_id_and_move_on_the_batch_clock(
    server: FakeServer, http: httpx.Client
) -> None:
    """Through the subprocess's control routes: every accepted custom id is counted across
    jobs (a repeat shows), a job whose input fails validation accepts none, and moving the
    batch clock ends a job without waiting; a reset forgets them all."""
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}

    def create(ids: list[str]) -> dict[str, Any]:
        params = {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        }
        body = {"requests": [{"custom_id": cid, "params": params} for cid in ids]}
        response = http.post("/v1/messages/batches", headers=headers, json=body)
        return {"status": response.status_code, **response.json()}

    first = create(["a", "b", "c"])
    create(["c", "d"])
    assert create(["e", "e"])["status"] == 400  # a repeated id within a batch is refused
    assert server.batch_accepted() == {
        "requests": 5,
        "distinct": 4,
        "repeated": {"c": 2},
        "jobs": 2,
    }
    assert first["processing_status"] == "in_progress"
    server.advance_batch_clock(3600)
    ended = http.get(f"/v1/messages/batches/{first['id']}", headers=headers).json()
    assert (ended["processing_status"], ended["request_counts"]["succeeded"]) == ("ended", 3)
    server.reset()
    assert server.batch_accepted() == {"requests": 0, "distinct": 0, "repeated": {}, "jobs": 0}
