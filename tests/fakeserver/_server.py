"""Start and stop the app on loopback, in the current event loop.

Both ways of running the server go through ``serving``: the CLI (one process,
served until a signal) and the in-process fixture (a test's own loop). The
shutdown timeout is short because a fake server has nothing worth draining: a
``hang`` or ``slow_body`` fault still in flight should not hold a test's
teardown for a minute (aiohttp's default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from aiohttp import web

from tests.fakeserver._app import create_app
from tests.fakeserver._config import ServerConfig
from tests.fakeserver._state import ServerState

LOOPBACK = "127.0.0.1"
READY_PREFIX = "READY "
"""The CLI's one line on stdout once it accepts connections: ``READY http://127.0.0.1:PORT``."""
SHUTDOWN_TIMEOUT_S = 1.0
BACKLOG = 4096
"""Room for a benchmark opening hundreds of connections at once."""


@asynccontextmanager
async def serving(
    config: ServerConfig, *, host: str = LOOPBACK, port: int = 0
) -> AsyncIterator[tuple[str, ServerState]]:
    """Serve until the block exits; yields the base URL (port 0 picks a free one) and state."""
    state = ServerState(config)
    runner = web.AppRunner(create_app(state), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=BACKLOG).start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}", state
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
