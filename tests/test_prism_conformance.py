"""batchdeck's real requests against the official OpenAPI specs, validated by Stoplight Prism.

Prism mocks an API from its spec and answers 422 with a ``validation`` list
when a request body breaks the schema. The specs are in ``tests/specs``
(``openai.fixed.json``, ``anthropic.fixed.json``: see the README there), with
a ``package.json`` and lock file pinning Prism. ``.ci/run`` installs it with
``npm ci --prefix tests/specs``; run on their own, these tests do the same
when it is missing. They skip, saying so, only when node or npm is not
installed; a failed install fails them. Both mock servers start in parallel
(each takes ~15-20 s to load its spec); readiness is a connect to the port,
polled against a deadline; both are killed in the fixture's teardown
whatever happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from engine._errors import ProviderError
from engine.providers import BatchRequest, CallRequest, make_provider

SPECS = Path(__file__).resolve().parent / "specs"
PRISM = SPECS / "node_modules" / ".bin" / "prism"
INSTALL_TIMEOUT_S = 240.0
READY_TIMEOUT_S = 240.0
"""Prism takes ~15-20 s to load a spec on an idle machine; minutes on a busy shared one."""
POLL_INTERVAL_S = 0.2
STOP_TIMEOUT_S = 5.0
KEY = "sk-conformance-0123456789abcdef"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(INSTALL_TIMEOUT_S + READY_TIMEOUT_S + 60),  # the first test starts Prism
]

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["refund", "bug", "other"]},
        "confidence": {"type": "number"},
    },
    "required": ["label", "confidence"],
    "additionalProperties": False,
}
REQUESTS = {
    "plain": CallRequest(model="MODEL", prompt="Say hello."),
    "system": CallRequest(
        model="MODEL",
        prompt="Label this ticket: my parcel never came",
        system="You label support tickets.",
        max_tokens=64,
        temperature=0.2,
        stop=("\n\n",),
    ),
    "prompt-cache": CallRequest(
        model="MODEL",
        prompt="Ticket: " * 600 + "my parcel never came",
        system="You label support tickets. " * 200,
        prompt_cache=True,
        cache_prefix=len("Ticket: " * 600),
    ),
    "schema": CallRequest(model="MODEL", prompt="Label: refund please", schema=SCHEMA),
    "schema-not-strict": CallRequest(
        model="MODEL",
        prompt="List tags",
        schema={"type": "array", "items": {"type": "string"}},
        schema_name="tags",
    ),
}


def _prism() -> Path:
    if PRISM.exists():
        return PRISM
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node/npm are not installed: the Prism conformance tests need them")
    command = [npm, "ci", "--prefix", str(SPECS), "--no-audit", "--no-fund"]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"{' '.join(command)} failed: {exc.stderr.decode(errors='replace')[-2000:]}")
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} took more than {INSTALL_TIMEOUT_S:g} s")
    if not PRISM.exists():
        pytest.fail(f"npm installed Prism but {PRISM} is missing")
    return PRISM


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Prism exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=POLL_INTERVAL_S).close()
            return
        except OSError:
            time.sleep(POLL_INTERVAL_S)
    pytest.fail(f"Prism did not listen on {port} within {READY_TIMEOUT_S:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class Mock:
    base_url: str
    log: Path

    def rejections(self) -> str:
        """Prism's validator lines, which say what in a request broke the spec."""
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines if "VALIDATOR" in line)[-3000:]


@pytest.fixture(scope="module")
def prism_mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Mock]]:
    """A running Prism mock per spec, keyed by provider name."""
    specs = {"openai": SPECS / "openai.fixed.json", "anthropic": SPECS / "anthropic.fixed.json"}
    prism = _prism()
    logs = tmp_path_factory.mktemp("prism")
    started: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name, spec in specs.items():
            port = _free_port()
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(prism), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started[name] = (process, port, log)
        for process, port, log in started.values():
            _wait_listening(process, port, log)
        yield {
            "openai": Mock(f"http://127.0.0.1:{started['openai'][1]}/v1", started["openai"][2]),
            "anthropic": Mock(
                f"http://127.0.0.1:{started['anthropic'][1]}", started["anthropic"][2]
            ),
        }
    finally:
        for process, _, _ in started.values():
            _stop(process)


@pytest.mark.parametrize("case", sorted(REQUESTS))
@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest")]
)
@pytest.mark.anyio
async def test_requests_pass_the_official_spec(
    prism_mocks: dict[str, Mock], provider: str, model: str, case: str
) -> None:
    """Prism's placeholder answers need not parse as real ones would (its sample
    OpenAI answer carries a ``refusal``), so only the status is judged: a 422 means
    the request broke the spec."""
    mock = prism_mocks[provider]
    request = replace(REQUESTS[case], model=model, timeout_s=30.0)
    client = make_provider(provider, base_url=mock.base_url, key=KEY)
    try:
        await client.call(request)
    except ProviderError as error:
        assert error.status != 422, f"Prism rejected the {case} request:\n{mock.rejections()}"
        assert error.kind not in ("bad_request", "connection", "timeout"), error.message
    finally:
        await client.aclose()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.anyio
async def test_prism_does_reject_a_request_that_breaks_the_spec(
    prism_mocks: dict[str, Mock], provider: str
) -> None:
    """The control: without it, a Prism that validated nothing would pass every test above."""
    mock = prism_mocks[provider]
    request = CallRequest(model="gpt-4o-mini", prompt="x", params={"temperature": "hot"})
    client = make_provider(provider, base_url=mock.base_url, key=KEY)
    try:
        with pytest.raises(ProviderError) as caught:
            await client.call(request)
    finally:
        await client.aclose()
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest")]
)
@pytest.mark.anyio
async def test_batch_requests_pass_the_official_spec(
    prism_mocks: dict[str, Mock], provider: str, model: str
) -> None:
    """OpenAI's file upload and batch create, Anthropic's batch create, each holding every
    request case above. Prism keeps no state (its file id and batch are placeholders),
    so submitting is judged on the requests: a 422 means one broke the spec."""
    mock = prism_mocks[provider]
    requests = [
        BatchRequest(f"case-{i}", replace(REQUESTS[case], model=model))
        for i, case in enumerate(sorted(REQUESTS))
    ]
    client = make_provider(provider, base_url=mock.base_url, key=KEY)
    api = client.batch_api()
    assert api is not None
    try:
        job = await api.submit(requests, token="tok-conformance")
    finally:
        await client.aclose()
    assert job.job_id
    sent = [line for line in mock.log.read_text(errors="replace").splitlines() if "POST" in line]
    paths = ["/v1/files", "/v1/batches"] if provider == "openai" else ["/v1/messages/batches"]
    assert all(any(path in line for line in sent) for path in paths), sent


@pytest.mark.anyio
async def test_prism_does_reject_batch_requests_that_break_the_spec(
    prism_mocks: dict[str, Mock],
) -> None:
    """The controls: Prism validates the upload's form fields, and each batched request's
    params (one without ``max_tokens`` is refused)."""
    files = {"file": ("batch.jsonl", b"{}\n", "application/jsonl")}
    async with httpx.AsyncClient(base_url=prism_mocks["openai"].base_url) as client:
        upload = await client.post(
            "files",
            data={"purpose": "not-a-purpose"},
            files=files,
            headers={"authorization": f"Bearer {KEY}"},
        )
    params = {"model": "claude-3-5-haiku-latest", "messages": [{"role": "user", "content": "x"}]}
    batch = {"requests": [{"custom_id": "no-max-tokens", "params": params}]}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=prism_mocks["anthropic"].base_url) as client:
        create = await client.post("/v1/messages/batches", json=batch, headers=headers)
    assert (upload.status_code, create.status_code) == (422, 422)
