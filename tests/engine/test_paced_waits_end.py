"""A call waiting for its turn under a rate limit is not in flight: the time limit and a stop
end the wait, and the call is never sent. Counted where calls land: the fake server, over
real HTTP through the run's own provider.

At 1 request/min with a 10-s burst a model's first call waits 9 s for its pace (a tenth of
the bucket to start with, one whole request needed), so a run told to stop sooner must end
without a single request; before, the waiting calls went out after the time limit or the
stop, one pace apart (minutes past the limit with a few workers)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from engine._events import Event, ItemStarted
from tests.engine.scripted import items, make_run
from tests.fakeserver.fixtures import serve_in_process

pytestmark = pytest.mark.anyio

KEY = "sk-paced-waits-0123456789"
PACE = {"rpm": 1.0, "burst": 10.0}
ENDS_WITHIN_S = 5.0
"""Well under the 9 s the first call waits for its pace."""


@pytest.mark.parametrize("ending", ["time_limit", "stop"])
async def test_the_time_limit_or_a_stop_ends_calls_still_waiting_for_their_pace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    limit = {"time_limit": 0.5} if ending == "time_limit" else {}
    async with serve_in_process(api_key=KEY) as server:
        run = make_run(
            tmp_path, items(20), models=("openai:gpt-4o-mini",),
            base_url=server.openai_base_url, workers=4, **PACE, **limit,
        )  # fmt: skip

        def stop_once_a_call_waits(event: Event) -> None:
            if ending == "stop" and isinstance(event, ItemStarted):
                run.stop()

        with anyio.fail_after(ENDS_WITHIN_S):
            finished = await run.execute([stop_once_a_call_waits])
        assert server.stats()["requests"] == 0
        assert finished.remaining == 20
        assert finished.state == ("capped" if ending == "time_limit" else "stopped")
