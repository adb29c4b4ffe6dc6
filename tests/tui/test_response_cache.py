"""The app and the response cache: answers the cache gives show as ``cached`` in the table,
and the cost panel shows the hit rate and what was not spent; Setup has the switches."""

from __future__ import annotations

from itertools import islice

import pytest
from textual.widgets import SelectionList

from engine import Item, PromptTemplate, default_template_for, preview_input, render_item
from engine._cache import Answer, ResponseCache, request_key
from engine._lanes import lanes_for
from engine._plan import call_request
from engine._results import Usage
from engine.providers import request_identities
from engine.readers import read_items
from tests.tui._flows import SIZE, TICKET_COUNT, TICKETS, finished, set_up, settle, until
from tui.app import make_app
from tui.model import Form, read_form
from tui.widgets.cost_meter import CostMeter
from tui.widgets.item_table import ItemTable

pytestmark = pytest.mark.anyio

MODEL = "openai:gpt-4o-mini"


def fill_cache(count: int) -> None:
    """Store an answer for the first ``count`` tickets, keyed as the Setup form's run sends
    them (the same config the form builds, the same request the engine builds)."""
    preview = preview_input(str(TICKETS))
    template = default_template_for(preview.fields)
    config = read_form(Form(str(TICKETS), [MODEL], template, "", {}))
    assert not isinstance(config, list), config
    identity = request_identities({MODEL: None})[MODEL]
    parsed = PromptTemplate.parse(template)
    lane = lanes_for(config, parsed)[MODEL]
    cache = ResponseCache.open(max_gb=1.0)
    for item in islice(read_items(str(TICKETS)), count):
        assert isinstance(item, Item)
        request = call_request(config, lane, render_item(parsed, item.fields), config.max_tokens)
        answer = Answer(f"label for {item.id}", None, "stop", Usage(100, 10))
        cache.put(request_key(identity(request)), answer)
    cache.close()


async def test_a_cached_run_shows_its_hit_rate_and_cached_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-app-cache-test-0123456789")
    fill_cache(TICKET_COUNT // 2)
    app = make_app(first="setup")
    async with app.run_test(size=SIZE) as pilot:
        screen = await set_up(app, pilot, cache_only="yes")  # no answer may come from the network
        picker = screen.query_one("#models", SelectionList)
        picker.deselect_all()
        picker.select(MODEL)
        await settle(app, pilot)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        await until(pilot, lambda: finished(app))
        await settle(app, pilot)
        model = app.session.model
        assert model.cached == TICKET_COUNT // 2 and model.counts["skipped"] == TICKET_COUNT // 2
        meter = str(app.screen.query_one(CostMeter).render())
        assert "50% hit rate" in meter and f"{TICKET_COUNT // 2:,} of {TICKET_COUNT:,}" in meter
        table = app.screen.query_one(ItemTable)
        table.action_first()  # the cached rows came first
        await settle(app, pilot)
        shown = [table.render_line(y).text for y in range(table.size.height)]
        assert any("cached" in line and "label for" in line for line in shown), shown
