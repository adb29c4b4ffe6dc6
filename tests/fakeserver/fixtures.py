"""Run the fake server from tests and benchmarks: a subprocess, or inside the test's loop.

``run_fake_server`` starts ``python -m tests.fakeserver`` and waits for its
READY line on stdout with a deadline (no sleeps, no port polling), and always
stops it on exit: SIGTERM, a bounded wait, then SIGKILL. A separate process is
what benchmarks need (its CPU is not the client's) and what the real CLI's
integration tests talk to. ``serve_in_process`` runs the same app in the
current event loop for fast async tests.

Both hand out a ``FakeServer``: the base URLs each SDK expects, plus
``stats()``, ``reset()`` and ``configure()`` backed by HTTP for a subprocess
and by direct calls in process (where a blocking HTTP call to a server on the
same loop would deadlock).

In a conftest::

    from tests.fakeserver.fixtures import fake_server, fake_server_process  # noqa: F401
"""

from __future__ import annotations

import selectors
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import pytest

from tests.fakeserver._config import ServerConfig
from tests.fakeserver._server import READY_PREFIX, serving
from tests.fakeserver._state import ServerState
from tests.fakeserver._stats import InFlightWatcher

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
CONTROL_TIMEOUT_S = 10.0


class _Control(Protocol):
    def stats(self) -> dict[str, Any]: ...
    def reset(self, *, config: bool) -> None: ...
    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]: ...
    def watch_in_flight(self, watcher: InFlightWatcher) -> AbstractContextManager[None]: ...
    def batch_accepted(self) -> dict[str, Any]: ...
    def advance_batch_clock(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class FakeServer:
    url: str
    """``http://127.0.0.1:PORT``."""
    _control: _Control

    @property
    def openai_base_url(self) -> str:
        """What the OpenAI SDK calls ``base_url`` (``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The host root: clients append ``/v1/messages``."""
        return self.url

    @property
    def gemini_base_url(self) -> str:
        """The host root: clients append ``/v1beta/models/{model}:generateContent``."""
        return self.url

    def stats(self) -> dict[str, Any]:
        """The ``/_stats`` snapshot (see ``_stats.Stats.snapshot``)."""
        return self._control.stats()

    def reset(self, *, config: bool = False) -> None:
        """Clear stats, refill buckets, forget markers; ``config=True`` restores start-up ones."""
        self._control.reset(config=config)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change options at runtime (any ``ServerConfig`` field); returns the full config."""
        return self._control.configure(changes)

    def watch_in_flight(self, watcher: InFlightWatcher) -> AbstractContextManager[None]:
        """Within the block, ``watcher(n)`` runs each time the requests in flight change to n.

        In process only: a subprocess's gauge is read with ``stats()``."""
        return self._control.watch_in_flight(watcher)

    def batch_accepted(self) -> dict[str, Any]:
        """Every custom id batch jobs accepted: ``requests``, ``distinct``, ``repeated``
        (id -> times, for those accepted more than once) and ``jobs``."""
        return self._control.batch_accepted()

    def advance_batch_clock(self, seconds: float) -> None:
        """Move the batch jobs' clock ``seconds`` forward: they progress as if that passed."""
        self._control.advance_batch_clock(seconds)


class _HttpControl:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/_stats")

    def reset(self, *, config: bool) -> None:
        self._request("POST", "/_reset", {"config": config})

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/_config", dict(changes))

    def watch_in_flight(self, watcher: InFlightWatcher) -> AbstractContextManager[None]:
        raise TypeError("watch_in_flight needs an in-process server (serve_in_process)")

    def batch_accepted(self) -> dict[str, Any]:
        return self._request("GET", "/_batch/accepted")

    def advance_batch_clock(self, seconds: float) -> None:
        self._request("POST", "/_batch/clock", {"advance_s": seconds})

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self._client.request(method, path, json=body)
        if response.status_code != httpx.codes.OK:
            raise ValueError(f"{method} {path}: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json()
        return result


class _DirectControl:
    def __init__(self, state: ServerState) -> None:
        self._state = state

    def stats(self) -> dict[str, Any]:
        return self._state.stats_snapshot()

    def reset(self, *, config: bool) -> None:
        self._state.reset(config=config)

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._state.configure(changes).model_dump(mode="json")

    def batch_accepted(self) -> dict[str, Any]:
        return self._state.batches.snapshot()

    def advance_batch_clock(self, seconds: float) -> None:
        self._state.batches.offset_s += seconds

    @contextmanager
    def watch_in_flight(self, watcher: InFlightWatcher) -> Iterator[None]:
        watchers = self._state.in_flight_watchers
        watchers.append(watcher)
        try:
            yield
        finally:
            watchers.remove(watcher)


@contextmanager
def run_fake_server(
    *, ready_timeout_s: float = READY_TIMEOUT_S, **options: Any
) -> Iterator[FakeServer]:
    """Run the server as a subprocess with ``options`` (``ServerConfig`` fields)."""
    config = ServerConfig(**options)  # fail here, with a clear error, on a bad option
    command = [sys.executable, "-m", "tests.fakeserver", "--config", config.model_dump_json()]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        url = _wait_ready(process, process.stdout, ready_timeout_s)
        with httpx.Client(base_url=url, timeout=CONTROL_TIMEOUT_S) as client:
            yield FakeServer(url, _HttpControl(client))
    finally:
        _stop(process)


@asynccontextmanager
async def serve_in_process(**options: Any) -> AsyncIterator[FakeServer]:
    """Run the server in the current event loop with ``options`` (``ServerConfig`` fields)."""
    async with serving(ServerConfig(**options)) as (url, state):
        yield FakeServer(url, _DirectControl(state))


def _wait_ready(process: subprocess.Popen[bytes], stdout: IO[bytes], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(remaining):
                continue
            line = stdout.readline().decode()
            if line.startswith(READY_PREFIX):
                return line.removeprefix(READY_PREFIX).strip()
            if not line:
                code = process.wait()
                raise RuntimeError(f"fake server exited with status {code} before READY")
    raise TimeoutError(f"fake server not READY within {timeout_s} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="session")
def fake_server_process() -> Iterator[FakeServer]:
    """One fake server subprocess for the whole session, with default options."""
    with run_fake_server() as server:
        yield server


@pytest.fixture
def fake_server(fake_server_process: FakeServer) -> FakeServer:
    """The session's server, reset to its start-up options and empty stats for this test."""
    fake_server_process.reset(config=True)
    return fake_server_process
