"""Keys on the way out: never in clear to a host that is not this machine, and credentials in a
base URL are used for the request but never stored or shown."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from engine._config import RunConfig
from engine._errors import ConfigError
from engine._secrets import redact
from engine.providers import CallRequest, make_provider
from tests.cli import SAMPLES, batchdeck
from tests.fakeserver.fixtures import FakeServer, run_fake_server

KEY = "sk-transport-4b7e1d9a2c6f8e0b3a5d"
ANSWER = {
    "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}


@pytest.mark.parametrize(
    "url", ["http://10.0.0.7:8000/v1", "http://api.openai.com/v1", "http://[fd00::1]/v1"]
)
def test_a_key_over_plain_http_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="refusing to send an API key in clear over http://"):
        make_provider("openai", base_url=url, key=KEY)


def test_credentials_in_the_url_count_as_a_key() -> None:
    with pytest.raises(ConfigError, match="in clear"):
        make_provider("vllm", base_url="http://bob:hunter22@10.0.0.7/v1", key=None)


@pytest.mark.parametrize(
    ("provider", "url", "allow"),
    [
        ("openai", "http://10.0.0.7:8000/v1", True),
        ("openai", "https://10.0.0.7:8000/v1", False),
        ("openai", "http://127.0.0.9:8000/v1", False),
        ("openai", "http://localhost:11434/v1", False),
        ("openai", "http://[::1]:8000/v1", False),
        ("vllm", "http://10.0.0.7:8000/v1", False),  # a local server on the LAN, no key
    ],
)
def test_https_loopback_no_key_or_an_explicit_allow_pass(
    provider: str, url: str, allow: bool
) -> None:
    key = KEY if provider == "openai" else None
    make_provider(provider, base_url=url, key=key, allow_insecure_http=allow)


@pytest.fixture
def listener() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback socket that records whatever connects to it (an HTTP proxy's seat)."""
    seen: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(2)
                    try:
                        seen.append(conn.recv(65536))
                    except OSError:
                        seen.append(b"")

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
        finally:
            stop.set()
            thread.join(5)


def test_the_cli_refuses_before_any_byte_is_sent(
    tmp_path: Path, listener: tuple[str, list[bytes]]
) -> None:
    """Through a proxy that records what reaches it: the refusal comes before any connection."""
    proxy, seen = listener
    done = batchdeck(
        "run", str(SAMPLES / "tickets.jsonl"), "--model", "openai:gpt-4o-mini",
        "--base-url", "http://api.example.test/v1", "--max-items", "1", "--retries", "0",
        "--timeout", "2", home=tmp_path,
        extra_env={"OPENAI_API_KEY": KEY, "HTTP_PROXY": proxy, "http_proxy": proxy},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "--allow-insecure-http" in done.stderr
    assert seen == []


@pytest.mark.anyio
async def test_credentials_in_the_base_url_are_sent_but_never_stored() -> None:
    url = "https://proxy.example.test/v1?api-version=2024-06-01&api_key=qs-secret-77e1"
    sent: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        return httpx.Response(200, json=ANSWER)

    provider = make_provider(
        "openai-compatible", base_url=url, key=KEY,
        transport=httpx.MockTransport(handler),
    )  # fmt: skip
    try:
        await provider.call(CallRequest(model="m", prompt="hi", timeout_s=5))
    finally:
        await provider.aclose()
    assert sent[0].params["api_key"] == "qs-secret-77e1"
    config = RunConfig(input="x.jsonl", base_url=url)
    stored = config.to_json().decode()
    assert "qs-secret-77e1" not in stored and "api-version=2024-06-01" in stored
    assert (
        config.fingerprint() == RunConfig(input="x.jsonl", base_url=url.split("&")[0]).fingerprint()
    )
    assert "qs-secret-77e1" not in redact(f"could not reach {url}")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY) as fake:
        yield fake


def test_the_cli_stores_a_base_url_without_its_credentials(
    server: FakeServer, tmp_path: Path
) -> None:
    base = server.openai_base_url.replace("http://", "http://someone:pw-9f3e2a@")
    run_dir = tmp_path / "run"
    done = batchdeck(
        "run", str(SAMPLES / "tickets.jsonl"), "--model", "openai:gpt-4o-mini",
        "--base-url", f"{base}?token=tk-51c0de", "--max-items", "2", "--run-dir", str(run_dir),
        home=tmp_path, extra_env={"OPENAI_API_KEY": KEY},
    )  # fmt: skip
    assert done.returncode in (0, 3), done.stderr
    stored = orjson.loads((run_dir / "config.json").read_bytes())["base_url"]
    assert stored == server.openai_base_url
    for path in run_dir.iterdir():
        assert b"pw-9f3e2a" not in path.read_bytes() and b"tk-51c0de" not in path.read_bytes()
