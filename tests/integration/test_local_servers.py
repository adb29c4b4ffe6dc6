"""The real CLI against the fake server standing in for local servers and for hosted APIs
reached at another URL: a base URL per model, named endpoints, the SDKs' variables, keys a
local server does not need, and answers that break structured output."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine import ProviderError, log
from engine.providers import list_models
from tests.cli import SAMPLES, batchdeck
from tests.fakeserver.fixtures import FakeServer, run_fake_server, serve_in_process

HEADLINES = SAMPLES / "headlines.txt"
SCHEMA = SAMPLES / "schemas" / "ticket_label.json"
FAST = ("--retry-wait", "0.01", "--timeout", "5")
DEAD = "http://127.0.0.1:9/v1"
"""The discard port: nothing listens, a connection is refused at once."""


@pytest.fixture(scope="module")
def served() -> Iterator[FakeServer]:
    with run_fake_server(api_key=None, latency_ms=1) as fake:
        yield fake


@pytest.fixture
def server(served: FakeServer) -> FakeServer:
    served.reset(config=True)
    return served


def run_dir(home: Path) -> Path:
    (found,) = (home / "runs").iterdir()
    return found


def rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_each_model_goes_to_its_own_url_over_the_runs_default(server: FakeServer, tmp_path):
    port = server.url.rsplit(":", 1)[1]
    own = f"http://127.0.0.1:{port}/v1"
    with_secret = f"http://user:hunter2pass@localhost:{port}/v1?api_key=canary0secret"
    done = batchdeck(
        "run", str(HEADLINES), "--base-url", DEAD, *FAST,
        "--model", f"llamacpp:smollm2={own}", "--model", f"ollama:qwen={with_secret}",
        home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.stats()["requests"] == 80
    saved = run_dir(tmp_path)
    config = orjson.loads((saved / "config.json").read_bytes())
    assert config["base_urls"] == {
        "llamacpp:smollm2": own,
        "ollama:qwen": f"http://localhost:{port}/v1",
    }
    assert config["base_url"] == DEAD
    for path in saved.iterdir():
        text = path.read_bytes()
        assert b"hunter2pass" not in text and b"canary0secret" not in text, path
    again = batchdeck("resume", saved.name, home=tmp_path)
    assert again.returncode == 0, again.stderr


def test_a_model_without_its_own_url_still_takes_the_runs(server: FakeServer, tmp_path):
    done = batchdeck(
        "run", str(HEADLINES), "--base-url", server.openai_base_url, *FAST, "--retries", "0",
        "--model", f"llamacpp:smollm2={DEAD}", "--model", "vllm:qwen", "--output",
        str(tmp_path / "out.jsonl"), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    by_model: dict[str, set[str]] = {}
    for row in rows(tmp_path / "out.jsonl"):
        by_model.setdefault(row["model"], set()).add(row["status"])
    assert by_model == {"vllm:qwen": {"ok"}, "llamacpp:smollm2": {"failed"}}


def test_an_endpoint_named_in_config_toml(server: FakeServer, tmp_path: Path) -> None:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'workers = 2\n\n[endpoints]\nbox = "{server.openai_base_url}"\n')
    done = batchdeck("run", str(HEADLINES), "--model", "llamacpp:smollm2=box", home=tmp_path)
    assert done.returncode == 0, done.stderr
    saved = orjson.loads((run_dir(tmp_path) / "config.json").read_bytes())
    assert saved["base_urls"] == {"llamacpp:smollm2": server.openai_base_url}
    assert saved["workers"] == 2
    wrong = batchdeck("run", str(HEADLINES), "--model", "llamacpp:smollm2=bx", home=tmp_path)
    assert wrong.returncode == 2
    (line,) = wrong.stderr.strip().splitlines()
    assert "'bx' is neither a URL nor an endpoint" in line and "(it has: box)" in line


def test_anthropic_at_a_local_url_needs_no_key(server: FakeServer, tmp_path: Path) -> None:
    done = batchdeck(
        "run", str(HEADLINES), "--model", f"anthropic:claude-local={server.url}", *FAST,
        home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.stats()["requests"] == 40


def test_a_server_ignoring_tool_choice_fails_each_item_once_keeping_its_text(
    server: FakeServer, tmp_path: Path
) -> None:
    server.configure(ignore_tool_choice=True)
    out = tmp_path / "out.jsonl"
    done = batchdeck(
        "run", str(HEADLINES), "--model", "anthropic:claude-local", "--base-url", server.url,
        *FAST, "--schema", str(SCHEMA), "--retries", "3", "--output", str(out), home=tmp_path,
        extra_env={"ANTHROPIC_API_KEY": "any-key-the-server-ignores"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert server.stats()["requests"] == 40  # not retried: the same request gets the same
    for row in rows(out):
        assert row["status"] == "failed" and row["attempts"] == 1
        assert row["error"].startswith("invalid_output: the model did not call the tool")
        assert row["output"] and not row["output"].startswith("{")
    exported = batchdeck("export", run_dir(tmp_path).name, home=tmp_path)
    assert [r["output"] for r in map(orjson.loads, exported.stdout.splitlines())] == [
        r["output"] for r in rows(out)
    ]


def test_a_failed_invalid_output_keeps_what_the_model_said(server: FakeServer, tmp_path):
    source = tmp_path / "items.jsonl"
    source.write_text('{"id": "bad", "context": "label [[fault:invalid_json_output]] it"}\n')
    out = tmp_path / "out.jsonl"
    done = batchdeck(
        "run", str(source), "--model", "llamacpp:smollm2", "--base-url", server.openai_base_url,
        *FAST, "--schema", str(SCHEMA), "--retries", "1", "--output", str(out), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (row,) = rows(out)
    assert row["status"] == "failed" and row["error"].startswith("invalid_output")
    assert row["attempts"] == 2 and orjson.loads(row["output"]) is not None


@pytest.mark.parametrize(
    ("model", "variable", "url"),
    [
        ("openai:gpt-4o-mini", "OPENAI_BASE_URL", "openai_base_url"),
        ("anthropic:claude-haiku-4-5", "ANTHROPIC_BASE_URL", "url"),
    ],
)
def test_the_sdks_base_url_variables_reach_the_server(
    server: FakeServer, tmp_path: Path, model: str, variable: str, url: str
) -> None:
    server.configure(api_key="test-key")
    key = "OPENAI_API_KEY" if variable == "OPENAI_BASE_URL" else "ANTHROPIC_API_KEY"
    done = batchdeck(
        "run", str(HEADLINES), "--model", model, *FAST, "--retries", "0", home=tmp_path,
        extra_env={variable: getattr(server, url), key: "test-key"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.stats()["requests"] == 40


def test_openai_compatible_sends_OPENAI_API_KEY(server: FakeServer, tmp_path: Path) -> None:
    server.configure(api_key="test-key")
    done = batchdeck(
        "run", str(HEADLINES), "--model", "openai-compatible:any", "--base-url",
        server.openai_base_url, *FAST, home=tmp_path, extra_env={"OPENAI_API_KEY": "test-key"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.anyio
async def test_list_models_asks_the_server() -> None:
    async with serve_in_process(api_key=None, listed_models=("b-model", "a-model")) as fake:
        assert await list_models("llamacpp", fake.openai_base_url) == ["a-model", "b-model"]
        assert await list_models("anthropic", fake.url) == ["a-model", "b-model"]
    with pytest.raises(ProviderError, match="connection to llamacpp failed"):
        await list_models("llamacpp", DEAD)


def test_the_same_model_on_two_servers_is_two_models_told_apart(
    server: FakeServer, tmp_path: Path
) -> None:
    with run_fake_server(api_key=None, latency_ms=1) as other:
        urls = (server.openai_base_url, other.openai_base_url)
        out = tmp_path / "out.csv"
        done = batchdeck(
            "run", str(HEADLINES), *FAST, "--model", f"llamacpp:smollm2={urls[0]}",
            "--model", f"llamacpp:smollm2={urls[1]}", "--output", str(out), home=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert server.stats()["requests"] == other.stats()["requests"] == 40
    labels = [f"llamacpp:smollm2 [{url.split('/')[2]}]" for url in urls]
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["model"] for row in exported[:2]] == labels  # input order, then --model's
    assert {row["model"] for row in exported} == set(labels) and len(exported) == 80
    saved = run_dir(tmp_path)
    assert {result.model for result in log.iter_results(saved / "log.jsonl")} == set(labels)
    config = orjson.loads((saved / "config.json").read_bytes())
    assert config["models"] == labels
    assert config["base_urls"] == dict(zip(labels, urls, strict=True))
    again = batchdeck("resume", saved.name, home=tmp_path)
    assert again.returncode == 0, again.stderr
    twice = batchdeck(
        "run", str(HEADLINES), "--model", f"llamacpp:smollm2={urls[0]}",
        "--model", f"llamacpp:smollm2={urls[0]}", home=tmp_path,
    )  # fmt: skip
    assert twice.returncode == 2 and "listed twice" in twice.stderr, twice.stderr
