"""Numbers no cap can count in, from a flag or the user's price file: one line, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from engine._errors import ConfigError
from engine._prices import PriceTable
from tests.cli import SAMPLES, batchdeck

TICKETS = str(SAMPLES / "tickets.jsonl")


def assert_one_line_usage_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    stderr = proc.stderr
    assert proc.returncode == 2, stderr
    assert stderr.count("\n") == 1, stderr
    assert "internal error" not in stderr
    for needle in needles:
        assert needle in stderr, stderr


@pytest.mark.parametrize("value", ["inf", "1e400", "Infinity"])
@pytest.mark.parametrize("flag", ["--max-cost", "--max-item-cost"])
def test_a_cap_that_is_not_finite_is_refused(flag: str, value: str, tmp_path: Path) -> None:
    proc = batchdeck(
        "run",
        TICKETS,
        f"{flag}={value}",
        "--max-items",
        "1",
        "--sim-latency-ms",
        "0",
        home=tmp_path,
    )
    assert_one_line_usage_error(proc, flag, "finite")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def write_user_prices(home: Path, entry: object) -> Path:
    path = home / "config" / "prices.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(orjson.dumps({"models": {"simulate:mine": entry}}))
    return path


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"input": 1e308, "output": 1.0}, "input"),
        ({"input": 1.0, "output": "0.6"}, "output"),
        ({"input": 1.0, "output": 1.0, "cached_input": -1}, "cached_input"),
        ({"input": True, "output": 1.0}, "input"),
        ({"input": 1.0, "output": None}, "output"),
        ({"input": 1.0, "output": [1]}, "output"),
    ],
)
def test_an_unusable_price_names_the_file_the_model_and_the_field(
    entry: dict[str, object], field: str, tmp_path: Path
) -> None:
    path = write_user_prices(tmp_path, entry)
    with pytest.raises(ConfigError, match=f"model 'simulate:mine': {field} must be a number"):
        PriceTable.load(path)


@pytest.mark.parametrize("entry", [{"input": 1e308, "output": 1e308}, {"input": "x", "output": 1}])
def test_the_cli_refuses_a_hostile_price_file_with_one_line(
    entry: dict[str, object], tmp_path: Path
) -> None:
    path = write_user_prices(tmp_path, entry)
    proc = batchdeck(
        "run", TICKETS, "--model", "simulate:mine", "--max-cost", "1",
        "--sim-latency-ms", "0", home=tmp_path,
    )  # fmt: skip
    assert_one_line_usage_error(proc, str(path), "simulate:mine")
