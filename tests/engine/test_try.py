"""A try (``create_try``) and the estimate calibrated from what its calls used.

The provider is scripted to use tokens the estimate cannot guess: one input token a
character of the prompt (the estimate counts four bytes a token) and a fixed answer
size (the estimate assumes a quarter of ``max_tokens``), so a calibrated figure is
told apart from the estimate's own by how close it comes to what the whole input
really uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import (
    ConfigError,
    ItemResult,
    Run,
    RunConfig,
    calibration_of,
    create_try,
    estimate,
    list_runs,
    load_results,
    make_config,
)
from engine._paths import tries_root
from engine._results import Usage
from engine.providers._base import CallRequest, CallResult
from tests.engine.scripted import ScriptedProvider, execute, write_jsonl
from tests.fakeserver.fixtures import serve_in_process

pytestmark = pytest.mark.anyio

MODEL = "openai:gpt-4o-mini"
KEY = "sk-try-test-0123456789abcdef"
ITEMS = 40
TRIED = 5
ANSWER_TOKENS = 30


def _context(i: int) -> str:
    return f"ticket {i}: " + "words " * (5 + i % 7)


def _answer(request: CallRequest) -> CallResult:
    return CallResult("a label", Usage(len(request.prompt), ANSWER_TOKENS))


def _config(tmp_path: Path) -> RunConfig:
    rows = [{"id": f"t{i}", "context": _context(i)} for i in range(ITEMS)]
    source = write_jsonl(tmp_path / "input.jsonl", rows)
    return make_config(
        input=str(source),
        models=(MODEL,),
        prompt="Label this: {context}",
        max_tokens=400,
        retry={"retries": 0, "base_s": 0.0, "cap_s": 0.0},
    )


async def _tried(config: RunConfig, provider: ScriptedProvider | None) -> Run:
    run = create_try(config, TRIED)
    finished, _ = await execute(run, provider)
    assert finished.ok == TRIED
    return run


async def test_the_estimate_is_calibrated_from_the_tokens_the_try_used(tmp_path: Path) -> None:
    config = _config(tmp_path)
    tried = await _tried(config, ScriptedProvider(_answer))
    calibration = calibration_of(tried)
    lane = calibration.lanes[MODEL]
    assert (calibration.items, lane.calls, lane.output_tokens) == (
        TRIED,
        TRIED,
        TRIED * ANSWER_TOKENS,
    )

    plain = estimate(config.model_copy(update={"cache": False}))
    found = estimate(config.model_copy(update={"cache": False}), calibration=calibration)
    (model,), (own,) = found.models, plain.models
    used_in = sum(len(f"Label this: {_context(i)}") for i in range(ITEMS))
    assert model.output_tokens == ITEMS * ANSWER_TOKENS  # the estimate alone: a quarter of 400
    assert own.output_tokens == ITEMS * 100
    assert abs(model.input_tokens - used_in) / used_in < 0.10  # the sample's ratio carries over
    assert abs(own.input_tokens - used_in) / used_in > 0.50  # four bytes a token: far off
    assert model.calibrated and not own.calibrated
    assert "as 5 sampled calls used" in model.output_counted
    assert (found.calibrated_items, found.calibrated_from) == (TRIED, str(tried.run_dir))
    assert (plain.calibrated_items, plain.calibrated_from) == (0, None)


async def test_a_try_the_cache_answered_measures_nothing_and_keeps_the_earlier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over real HTTP to the fake server, whose answers the response cache keeps."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    async with serve_in_process(api_key=KEY, latency_ms=0) as fake:
        config = _config(tmp_path).model_copy(update={"base_url": fake.openai_base_url})
        first = calibration_of(await _tried(config, None))
        again = await _tried(config, None)  # the same requests: the cache answers them all
        assert fake.stats()["requests"] == TRIED
    second = calibration_of(again)
    assert first.items == TRIED and second.items == 0 and not second.lanes
    assert estimate(config, calibration=second).calibrated_items == 0
    assert second.over(first).lanes == first.lanes
    found = estimate(config, calibration=second.over(first))
    per_call = first.lanes[MODEL].output_per_call
    assert found.cached == TRIED and found.calibrated_items == TRIED
    assert found.models[0].output_tokens == round((ITEMS - TRIED) * per_call)


async def test_a_try_is_its_own_run_of_the_chosen_items_outside_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine._try.TRIES_KEPT", 3)
    config = _config(tmp_path)
    first = create_try(config, TRIED)
    drawn = create_try(config, TRIED, sample=True)
    for run in (first, drawn):
        await execute(run, ScriptedProvider(_answer))
    first_ids = [r.id for r in _results(first)]
    drawn_ids = [r.id for r in _results(drawn)]
    assert first_ids == [f"t{i}" for i in range(TRIED)]
    assert len(set(drawn_ids)) == TRIED and set(drawn_ids) <= {f"t{i}" for i in range(ITEMS)}
    assert drawn_ids == sorted(drawn_ids, key=lambda i: int(i[1:]))  # in input order
    assert list_runs() == []  # a try is no past run
    for _ in range(3):
        create_try(config, 1)
    assert len(list(tries_root().glob("*.jsonl"))) == 3  # the oldest went
    with pytest.raises(ConfigError, match="at least 1"):
        create_try(config, 0)


def _results(run: Run) -> list[ItemResult]:
    return sorted(load_results(run), key=lambda r: r.line)


async def test_a_try_of_a_batch_model_goes_online_and_serves_the_batch_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch job may take hours: the try sends its model online, and what it paid for is
    what the batch run would send (the estimate of the batch run finds it in the cache)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    async with serve_in_process(api_key=KEY, latency_ms=0) as fake:
        config = _config(tmp_path).model_copy(
            update={"models": (f"{MODEL}@batch",), "base_url": fake.openai_base_url}
        )
        tried = await _tried(config, None)
        assert fake.stats()["requests"] == TRIED  # chat completions, no batch job
    assert tried.config.models == (MODEL,) and not tried.config.batch_models
    found = estimate(config, calibration=calibration_of(tried))
    (model,) = found.models
    assert model.batch and model.calibrated and found.calibrated_items == TRIED
    assert found.cached == TRIED
