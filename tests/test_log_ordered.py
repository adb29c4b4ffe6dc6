"""Results in input order from a log in completion order: by line, then the run's model order;
the latest record of a pair wins and the ones it replaced are kept, oldest first."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import log
from engine._results import ItemResult
from engine.log import _ordered

MODELS = ("b:second", "a:first")


def record(model: str, line: int, status: str, n: int) -> ItemResult:
    return ItemResult(
        id=f"id{line}",
        model=model,
        status=status,
        line=line,
        fields={"n": n},  # type: ignore[arg-type]
    )


def write(path: Path, results: list[ItemResult]) -> None:
    writer = log.LogWriter.create(
        path, log.header_record("r", config="c", input=None), durability="flush"
    )
    writer.write_group([log.encode(log.result_record(r)) for r in results])
    writer.close()


pairs = st.tuples(st.sampled_from([*MODELS, "z:unlisted"]), st.integers(1, 40))
statuses = st.sampled_from(["ok", "failed", "truncated", "skipped"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(pairs, statuses), max_size=120), st.integers(1, 7))
def test_input_order_latest_wins_and_earlier_records_are_kept(
    written: list[tuple[tuple[str, int], str]], chunk: int
) -> None:
    results = [record(model, line, status, n) for n, ((model, line), status) in enumerate(written)]
    order = {model: index for index, model in enumerate(MODELS)}
    expected_keys = sorted({(r.line, order.get(r.model, len(MODELS)), r.model) for r in results})
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(_ordered, "CHUNK", chunk)  # many chunks: the merge is what sorts
        path = Path(folder) / "log.jsonl"
        write(path, results)
        got = list(log.results_in_input_order(path, MODELS, earlier=True))
    assert [(o.result.line, o.result.model) for o in got] == [(k[0], k[2]) for k in expected_keys]
    for ordered in got:
        mine = [
            r for r in results if (r.model, r.line) == (ordered.result.model, ordered.result.line)
        ]
        assert ordered.result == mine[-1]
        assert list(ordered.earlier) == mine[:-1]


def test_without_earlier_nothing_replaced_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    write(path, [record("a:first", 2, "failed", 0), record("a:first", 1, "ok", 1),
                 record("a:first", 2, "ok", 2)])  # fmt: skip
    got = list(log.results_in_input_order(path, MODELS))
    assert [(o.result.line, o.result.status, o.earlier) for o in got] == [
        (1, "ok", ()),
        (2, "ok", ()),
    ]
