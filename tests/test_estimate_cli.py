"""``estimate`` refuses what ``run`` refuses (exit 2, the same line), warns about what would
only hurt the run, says how it counted, and is close to what the run then costs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine._config import make_config
from engine._estimate import Estimate, estimate
from tests.cli import SAMPLES, batchdeck
from tests.fakeserver.fixtures import run_fake_server

TICKETS = str(SAMPLES / "tickets.jsonl")
FAST = ("--sim-latency-ms", "0")


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (("--prompt", "Label {nosuchfield}"), "the prompt uses {nosuchfield}"),
        (("--param", "max_tokens=5"), "--param max_tokens would lift the output limit"),
        (("--model", "openai:no-such-model-priced", "--max-cost", "1"), "no price known for"),
        (
            ("--model", "anthropic:claude-haiku-4-5", "--reasoning-effort", "low"),
            "--max-tokens 512 is too small for --reasoning-effort",
        ),
    ],
    ids=["unknown placeholder", "output limit param", "unpriced under a cap", "no room to think"],
)
def test_estimate_refuses_what_run_refuses_with_the_same_line(
    flags: tuple[str, ...], why: str, tmp_path: Path
) -> None:
    ran = batchdeck("run", TICKETS, *FAST, *flags, home=tmp_path)
    estimated = batchdeck("estimate", TICKETS, *flags, home=tmp_path)
    assert ran.returncode == 2 and ran.stderr.startswith(f"batchdeck: error: {why}"), ran.stderr
    assert (estimated.returncode, estimated.stderr) == (2, ran.stderr)
    assert estimated.stdout == ""


def test_estimate_warns_of_a_cap_below_the_least_cost_and_a_missing_key(tmp_path: Path) -> None:
    done = batchdeck(
        "estimate", TICKETS, "--model", "openai:gpt-4o-mini", "--max-cost", "0.000001",
        home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.splitlines()
    assert any(
        w.startswith("batchdeck: warning: --max-cost $0.000001 is below the least this run")
        for w in warnings
    ), warnings
    assert any(w.startswith("batchdeck: warning: no API key for openai") for w in warnings)
    assert "counted     openai:gpt-4o-mini: ~" in done.stdout
    assert "likely" in done.stdout


def test_estimate_warns_when_a_reasoning_model_has_no_room_to_answer(tmp_path: Path) -> None:
    done = batchdeck(
        "estimate", TICKETS, "--model", "openai:o4-mini", "--max-tokens", "512", home=tmp_path,
        extra_env={"OPENAI_API_KEY": "sk-test"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(
        "batchdeck: warning: --max-tokens 512 may leave openai:o4-mini no room to answer"
    )
    roomy = batchdeck(
        "estimate", TICKETS, "--model", "openai:o4-mini", "--max-tokens", "8000", home=tmp_path,
        extra_env={"OPENAI_API_KEY": "sk-test"},
    )  # fmt: skip
    assert roomy.returncode == 0 and roomy.stderr == ""


@pytest.mark.parametrize("schema", [None, str(SAMPLES / "schemas" / "ticket_label.json")])
def test_simulate_estimate_is_within_a_quarter_of_the_run(
    schema: str | None, tmp_path: Path
) -> None:
    extra = ("--schema", schema) if schema else ()
    run_dir = tmp_path / "run"
    done = batchdeck("run", TICKETS, *FAST, *extra, "--run-dir", str(run_dir), home=tmp_path)
    assert done.returncode == 0, done.stderr
    actual = orjson.loads((run_dir / "summary.json").read_bytes())
    config = make_config(
        input=TICKETS, sim={"latency_ms": 0},
        output_schema=None if schema is None else orjson.loads(Path(schema).read_bytes()),
    )  # fmt: skip
    assert_within_a_quarter(estimate(config), actual)


def assert_within_a_quarter(found: Estimate, actual: dict[str, float]) -> None:
    """Tokens in, tokens out and cost within 25% of what the run's summary says."""
    assert found.cost_likely is not None
    for guess, real in (
        (found.input_tokens, actual["input_tokens"]),
        (found.output_tokens, actual["output_tokens"]),
        (found.cost_likely, actual["cost_usd"]),
    ):
        assert abs(guess - real) <= 0.25 * real, (guess, real)


def test_estimate_calibrated_from_a_try_says_so_and_counts_what_the_try_used(
    tmp_path: Path,
) -> None:
    """Over real HTTP to the fake server (16 output tokens an answer): ``try`` says what the
    whole input would cost at the tokens its 5 items used, and names the run to give
    ``estimate --calibrate-from``, which then counts 16 tokens out a call, not a quarter of
    ``--max-tokens``, and says what it was calibrated from."""
    key = "sk-calibrate-0123456789abcdef"
    env = {"OPENAI_API_KEY": key}
    with run_fake_server(api_key=key, latency_ms=1) as server:
        common = ("--model", "openai:gpt-4o-mini", "--base-url", server.openai_base_url)
        tried = batchdeck("try", TICKETS, "--n", "5", *common, home=tmp_path, extra_env=env)
    assert tried.returncode == 0, tried.stderr
    assert "the full input (60 items): ~$" in tried.stdout
    assert "calibrated from 5 sampled items" in tried.stdout
    run_dir = tried.stdout.split("--calibrate-from ", 1)[1].split()[0]
    flags = ("estimate", TICKETS, *common, "--no-cache")
    plain = batchdeck(*flags, home=tmp_path, extra_env=env)
    found = batchdeck(*flags, "--calibrate-from", run_dir, home=tmp_path, extra_env=env)
    assert plain.returncode == found.returncode == 0, found.stderr
    assert "~7,680 out" in plain.stdout  # a quarter of --max-tokens 512, 60 calls
    assert "~960 out" in found.stdout  # what the try's calls wrote: 16 a call, 60 calls
    assert f"calibrated  from 5 sampled items of run {run_dir}: openai:gpt-4o-mini" in found.stdout
    assert "calibrated" not in plain.stdout
    as_json = batchdeck(*flags, "--calibrate-from", run_dir, "--json", home=tmp_path, extra_env=env)
    data = orjson.loads(as_json.stdout)
    assert (data["calibrated_items"], data["calibrated_from"]) == (5, run_dir)
    assert data["models"][0]["calibrated"] is True and data["output_tokens"] == 960


def test_estimate_calibrated_from_no_run_is_one_line(tmp_path: Path) -> None:
    done = batchdeck(
        "estimate", TICKETS, "--calibrate-from", str(tmp_path / "nowhere"), home=tmp_path
    )
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"batchdeck: error: no run {tmp_path / 'nowhere'}"), line


def test_estimate_calibrated_from_a_run_of_other_models_says_it_used_none(tmp_path: Path) -> None:
    tried = batchdeck("try", TICKETS, "--n", "3", *FAST, home=tmp_path)
    run_dir = tried.stdout.split("--calibrate-from ", 1)[1].split()[0]
    other = ("--model", "simulate:gpt-4o", "--calibrate-from", run_dir)
    done = batchdeck("estimate", TICKETS, *other, home=tmp_path)
    assert done.returncode == 0 and "calibrated" not in done.stdout
    assert "it counted no call of these models" in done.stderr
    Path(run_dir.rstrip("/") + ".jsonl").unlink()  # the try's input, gone (pruned, say)
    gone = batchdeck("estimate", TICKETS, *other, home=tmp_path)
    assert gone.returncode == 2 and gone.stdout == ""
    (line,) = gone.stderr.strip().splitlines()
    assert line.startswith(f"batchdeck: error: cannot calibrate from run {run_dir}: "), line
