"""Reading the servers' pacing headers (engine/providers/_headers.py): Retry-After in its
three forms (``retry-after-ms``, seconds, an HTTP date) and the Go durations OpenAI's
rate-limit resets are written in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from engine._errors import ProviderError
from engine.providers import CallRequest
from engine.providers._headers import parse_duration, retry_after
from tests._mock_provider import json_response, mock_provider
from tests.providers._bodies import openai_error


@pytest.mark.anyio
async def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    body = openai_error("Rate limit reached", "tokens", "rate_limit_exceeded")
    async with mock_provider("openai", json_response(429, body, {"retry-after": when})) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(CallRequest(model="gpt-4o-mini", prompt="x"))
    assert caught.value.retry_after == pytest.approx(20, abs=1.5)


def test_retry_after_variants_against_a_fixed_clock() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}, now=now) == 0.25
    assert retry_after({"retry-after": "9"}, now=now) == 9.0
    assert retry_after({"retry-after": "Sat, 01 Mar 2025 12:00:30 GMT"}, now=now) == 30.0
    assert retry_after({"retry-after": "Sat, 01 Mar 2025 11:00:00 GMT"}, now=now) == 0.0
    assert retry_after({"retry-after": "soon"}, now=now) is None
    assert retry_after({}, now=now) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("12ms", 0.012), ("1.5s", 1.5), ("1h2m3s", 3723.0), ("20", 20.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
