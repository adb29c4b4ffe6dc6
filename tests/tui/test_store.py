"""ItemStore keeps filtered views right through every status change, without rescans."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine._results import ErrorInfo, Status
from tests.tui._factories import MODEL, finished
from tui.model import STATUS_FILTERS, ItemStore, Row
from tui.model._column import StrColumn

_STATUS_OF_FILTER = {
    "active": {"running", "retrying"},
    "ok": {"ok"},
    "failed": {"failed"},
    "skipped": {"skipped"},
    "truncated": {"truncated"},
}

_operations = st.lists(
    st.tuples(
        st.sampled_from(["start", "retry", "ok", "failed", "skipped", "truncated"]),
        st.integers(min_value=0, max_value=7),
        st.sampled_from(["timeout", "auth", "budget"]),
    ),
    max_size=60,
)


def _apply(store: ItemStore, operation: str, id: str, kind: str) -> None:
    if operation == "start":
        store.start(id, MODEL, 1)
    elif operation == "retry":
        store.retrying(id, MODEL, 1, ErrorInfo(kind, "again"), 1.0)  # type: ignore[arg-type]
    else:
        status: Status = operation  # type: ignore[assignment]
        error_kind = None if status == "ok" else kind
        store.finish(finished(id, status=status, kind=error_kind).result)


def _rows(store: ItemStore) -> list[Row]:
    return [store[position] for position in range(len(store))]


@settings(max_examples=200, deadline=None)
@given(_operations, st.booleans())
def test_views_match_a_full_scan_after_any_sequence(
    operations: list[tuple[str, int, str]], read_between: bool
) -> None:
    store = ItemStore()
    for operation, n, kind in operations:
        _apply(store, operation, f"id-{n}", kind)
        if read_between:
            store.view("active")
    rows = _rows(store)
    assert len({row.key for row in rows}) == len(rows)
    for status_filter in STATUS_FILTERS:
        view = list(store.view(status_filter))
        if status_filter == "all":
            expected = [row.position for row in rows]
        else:
            expected = [
                row.position for row in rows if row.status in _STATUS_OF_FILTER[status_filter]
            ]
        assert sorted(view) == expected
        assert store.count(status_filter) == len(expected)
    kinds: dict[str, int] = {}
    for row in rows:
        if row.status in ("failed", "skipped", "truncated"):
            assert row.error_kind is not None
            kinds[row.error_kind] = kinds.get(row.error_kind, 0) + 1
            assert row.position in store.kind_view(row.error_kind)
    assert store.kind_counts() == dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


def test_a_view_lists_rows_in_the_order_they_joined_it() -> None:
    store = ItemStore()
    for id in "abc":
        store.start(id, MODEL, 1)
    store.finish(finished("c").result)
    store.finish(finished("a").result)
    assert [store[p].id for p in store.view("ok")] == ["c", "a"]
    assert [store[p].id for p in store.view("active")] == ["b"]
    assert [store[p].id for p in store.view("all")] == ["a", "b", "c"]


def test_every_change_stamps_a_new_version_on_its_row_only() -> None:
    store = ItemStore()
    store.start("a", MODEL, 1)
    store.start("b", MODEL, 1)
    a, b = store.version_of(0), store.version_of(1)
    store.finish(finished("a").result)
    assert store.version_of(0) > max(a, b)
    assert store.version_of(1) == b
    assert store.version == store.version_of(0)


def test_an_unread_bucket_that_churns_stays_small() -> None:
    store = ItemStore()
    for n in range(20_000):
        store.start(f"id-{n}", MODEL, 1)
        store.finish(finished(f"id-{n}").result)
    # The in-flight bucket saw 20,000 joins and leaves and was never read:
    # compaction on write keeps its entries within a constant of the live ones.
    assert len(store._buckets["active"].positions) < 3000
    assert list(store.view("active")) == []
    assert store.count("ok") == 20_000


def test_ids_and_models_widths_are_tracked_for_the_table_layout() -> None:
    store = ItemStore()
    store.start("short", MODEL, 1)
    store.start("a-much-longer-identifier", "m", 1)
    assert store.widest_id == len("a-much-longer-identifier")
    assert store.widest_model == len(MODEL)


def test_previews_keep_only_the_start_of_long_outputs() -> None:
    store = ItemStore()
    store.finish(finished("a", output="x" * 10_000).result)
    assert 0 < len(store[0].preview) < 10_000


def test_a_string_column_reads_and_writes_any_row_and_hides_old_chunks_from_gc() -> None:
    column = StrColumn()
    values = [f"value-{n}" for n in range(10_000)]
    for value in values:
        column.append(value)
    assert len(column) == 10_000
    assert [column[n] for n in (0, 255, 256, 5_000, 9_999)] == [
        values[n] for n in (0, 255, 256, 5_000, 9_999)
    ]
    column[3] = "early"
    column[9_998] = "late"
    assert (column[2], column[3], column[4]) == ("value-2", "early", "value-4")
    assert column[9_998] == "late"
    for bad in (-1, 10_000):
        with pytest.raises(IndexError):
            column[bad]
        with pytest.raises(IndexError):
            column[bad] = "x"
    gc.collect()
    tracked = [chunk for chunk in column._chunks if gc.is_tracked(chunk)]
    assert len(tracked) <= 20  # only the newest chunks, not one per 256 rows


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="ab\0-", max_size=4), min_size=0, max_size=700),
    st.text(alphabet="ab\0-", min_size=1, max_size=3),
    st.integers(min_value=0, max_value=800),
)
def test_a_string_column_finds_what_a_row_by_row_scan_finds(
    values: list[str], text: str, start: int
) -> None:
    column = StrColumn()
    for value in values:
        column.append(value)
    expected = next((p for p in range(start, len(values)) if text in values[p]), None)
    assert column.find(text, start) == expected


def test_find_id_goes_on_after_the_current_row_and_wraps_round() -> None:
    store = ItemStore()
    for n in range(600):
        store.start(f"ticket-{n:04d}", MODEL, 1)
    assert store.find_id("ticket-0007") == 7  # an exact id
    assert store.find_id("-05") == 500  # the first id containing it
    assert store.find_id("-05", after=500) == 501
    assert store.find_id("-000", after=590) == 0  # wraps round
    assert store.find_id("nowhere") is None
