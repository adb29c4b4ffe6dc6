"""Pipelines and judges through the real CLI on simulate: a three-step run, two models and a
judge compared, failures stopping an item at its step, a SIGKILL mid-pipeline then resume,
the estimate of every step, and pipeline files refused in one line naming the line."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from engine import log
from engine._budget import usd
from engine._pipeline_file import load_pipeline
from engine._prices import PriceTable
from engine._steps import build_graph
from tests.cli import SAMPLES, batchdeck, reap, start
from tests.fakeserver.fixtures import run_fake_server

FAST = ("--sim-latency-ms", "0")
TICKETS = str(SAMPLES / "tickets.jsonl")
SCHEMA = SAMPLES / "schemas" / "ticket_label.json"

THREE_STEPS = f"""
[[step]]
name = "extract"
model = "simulate:gpt-4o-mini"
prompt = "List what this ticket is about: {{context}}"

[[step]]
name = "classify"
model = "simulate:gpt-4o-mini"
prompt = "Label this ticket ({{customer_tier}}): {{extract.output}}"
schema = "{SCHEMA}"

[[step]]
name = "summarise"
model = "simulate:claude-haiku-4-5"
prompt = "Summarise for a {{classify.parsed.category}} queue: {{extract.output}}"
"""


def pipeline_file(tmp_path: Path, text: str = THREE_STEPS) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def failing_pipeline(tmp_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """The three steps with three calls in ten failing and no retries, results in ``out``."""
    return batchdeck(
        "run", TICKETS, "--pipeline", str(pipeline_file(tmp_path)), *FAST,
        "--sim-failure-rate", "0.3", "--retries", "0", "--output", str(out), home=tmp_path,
    )  # fmt: skip


def results(run_dir: Path) -> list[dict[str, object]]:
    return [r for r in log.read_records(run_dir / "log.jsonl") if r.get("k") == "result"]


def test_a_three_step_pipeline_gives_one_row_per_item(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    done = batchdeck(
        "run", TICKETS, "--pipeline", str(pipeline_file(tmp_path)), *FAST,
        "--output", str(out), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60 and all(row["status"] == "ok" for row in rows)
    row = rows[0]
    assert row["id"] == "TCK-10401" and row["customer_tier"] == "pro"
    assert row["classify.parsed.category"] and row["summarise.output"].startswith("[simulated")
    assert row["extract.output"].split()[-1] in row["summarise.output"]  # it read extract
    total = sum(float(row[f"{step}.cost_usd"]) for step in ("extract", "classify", "summarise"))
    assert float(row["cost_usd"]) == pytest.approx(total)
    assert float(row["summarise.latency_ms"]) >= 0

    nested = batchdeck("export", str(_run_dir(done.stderr)), home=tmp_path)
    first = orjson.loads(nested.stdout.splitlines()[0])
    assert set(first["steps"]) == {"extract", "classify", "summarise"}
    assert first["steps"]["classify"]["simulate:gpt-4o-mini"]["parsed"]["category"]


def _run_dir(stderr: str) -> Path:
    return Path(stderr.split(" in ", 1)[1].split()[0])


def test_two_models_and_a_judge_compared(tmp_path: Path) -> None:
    done = batchdeck(
        "run", TICKETS, "--model", "simulate:gpt-4o-mini", "--model", "simulate:claude-haiku-4-5",
        "--judge", "simulate:gpt-4o", "--schema", str(SCHEMA), *FAST, home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_dir = _run_dir(done.stderr)
    verdicts = [
        r["parsed"]
        for r in results(run_dir)
        if str(r["head"][0]).startswith("judge/")  # type: ignore[index]
    ]
    assert len(verdicts) == 60
    assert all(set(v) == {"verdict", "confidence", "reasoning", "best"} for v in verdicts)  # type: ignore[arg-type]

    compared = batchdeck("compare", str(run_dir), "--format", "json", home=tmp_path)
    assert compared.returncode == 0, compared.stderr
    (step,) = orjson.loads(compared.stdout)["steps"]
    assert step["step"] == "answer" and step["judges"] == ["judge/simulate:gpt-4o"]
    models = {m["model"]: m for m in step["models"]}
    assert set(models) == {"simulate:gpt-4o-mini", "simulate:claude-haiku-4-5"}
    assert sum(m["wins"] for m in models.values()) == 60
    assert all(0 < m["win_rate"] < 1 for m in models.values())  # simulate's models differ
    mini, haiku = models["simulate:gpt-4o-mini"], models["simulate:claude-haiku-4-5"]
    assert 0 < mini["agreement"] < 1 and mini["agreement"] == haiku["agreement"]
    assert set(mini["field_agreement"]) == {"category", "urgency", "summary"}
    assert mini["cost_per_win_usd"] == pytest.approx(mini["mean_cost_usd"] * 60 / mini["wins"])
    assert mini["mean_cost_usd"] < haiku["mean_cost_usd"]

    text = batchdeck("compare", str(run_dir), home=tmp_path)
    assert "judged by judge/simulate:gpt-4o" in text.stdout and "agree on category" in text.stdout


def test_a_failure_stops_the_item_at_its_step(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = failing_pipeline(tmp_path, out)
    assert done.returncode == 1, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    stopped = [row for row in rows if row["status"] != "ok"]
    assert stopped and len(stopped) < 60
    for row in stopped:
        step, kind = row["error"].split(": ")
        steps = row["steps"]
        lane = next(iter(steps[step].values()))
        assert lane["status"] == "failed" and lane["error"].startswith(kind)
        later = list(steps)[list(steps).index(step) + 1 :]
        for name in later:
            (skipped,) = steps[name].values()
            assert skipped["status"] == "skipped"
            assert skipped["error"] == f"upstream: {step}: {kind}"
    for row in rows:
        lanes = [lane for step in row["steps"].values() for lane in step.values()]
        assert (row["status"] == "ok") == all(lane["status"] == "ok" for lane in lanes)


def _kill_once_logged(args: tuple[str, ...], run_dir: Path, home: Path, results_at: int) -> None:
    """Start ``args``, SIGKILL it once the log holds ``results_at`` results."""
    proc = start(*args, home=home)
    try:
        while not (run_dir / "log.jsonl").exists() or len(results(run_dir)) < results_at:
            assert proc.poll() is None, "the run ended before it could be killed"
            try:
                proc.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        reap(proc)


def test_resume_after_a_sigkill_mid_pipeline_finishes_each_step_once(tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_bytes(
        b"".join(
            orjson.dumps({"id": f"t{i:04d}", "context": f"ticket {i}", "customer_tier": "pro"})
            + b"\n"
            for i in range(300)
        )
    )
    run_dir = tmp_path / "killed"
    args = ("--pipeline", str(pipeline_file(tmp_path)), "--sim-latency-ms", "10", "--workers", "4")
    _kill_once_logged(("run", str(source), *args, "--run-dir", str(run_dir)), run_dir, tmp_path, 60)
    before = results(run_dir)
    steps_of: dict[str, set[str]] = {}
    for record in before:
        model, item_id = record["head"][:2]  # type: ignore[index]
        steps_of.setdefault(item_id, set()).add(str(model).split("/")[0])
    assert any(steps != {"extract", "classify", "summarise"} for steps in steps_of.values())
    assert any("extract" in steps and "summarise" not in steps for steps in steps_of.values())
    summarised = sum("summarise" in steps for steps in steps_of.values())

    done = batchdeck("resume", str(run_dir), home=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    # the items the kill left half way count as items done here, not as unfinished
    left = 300 - summarised
    assert ": 300 items, 900 calls" in done.stderr
    assert f"  items ok {left:>8}  100.0%" in done.stderr and "unfinished" not in done.stderr
    keys = [tuple(r["head"][:2]) for r in results(run_dir)]  # type: ignore[index]
    assert len(keys) == len(set(keys)) == 900  # every lane of every item, each exactly once
    exported = batchdeck("export", str(run_dir), "--format", "csv", home=tmp_path)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 300 and all(row["status"] == "ok" for row in rows)
    assert all(row["extract.output"].split()[-1] in row["summarise.output"] for row in rows)


def test_the_estimate_counts_every_step_and_the_judge(tmp_path: Path) -> None:
    est = batchdeck(
        "estimate", TICKETS, "--model", "simulate:gpt-4o-mini", "--model",
        "simulate:claude-haiku-4-5", "--judge", "simulate:gpt-4o", "--json", home=tmp_path,
    )  # fmt: skip
    assert est.returncode == 0, est.stderr
    estimate = orjson.loads(est.stdout)
    assert estimate["calls"] == 180
    lanes = [m["model"] for m in estimate["models"]]
    assert lanes == [
        "answer/simulate:gpt-4o-mini", "answer/simulate:claude-haiku-4-5", "judge/simulate:gpt-4o"
    ]  # fmt: skip
    run = batchdeck(
        "run", TICKETS, "--model", "simulate:gpt-4o-mini", "--model", "simulate:claude-haiku-4-5",
        "--judge", "simulate:gpt-4o", *FAST, home=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    spent = sum(float(r["head"][4]) for r in results(_run_dir(run.stderr)))  # type: ignore[index]
    assert sum(m["cost_likely"] for m in estimate["models"]) == pytest.approx(spent, rel=1e-9)


BAD_FILES = [
    ("[[step]]\nname = 'a'\nmodel = 'simulate:x'\nprompt = '{b.output}'\n", 4, "no such step"),
    (
        "[[step]]\nname = 'a'\nmodel = 'simulate:x'\nprompt = '{b.output}'\n\n"
        "[[step]]\nname = 'b'\nmodel = 'simulate:x'\nprompt = '{a.output}'\n",
        4,
        "cycle",
    ),
    (
        "[[step]]\nname = 'a'\nmodel = 'simulate:x'\n\n[[step]]\nname = 'b'\n"
        "model = 'simulate:x'\nprompt = '{a.parsed.label}'\n",
        8,
        "has no schema",
    ),
    ("[[step]]\nname = 'a'\nmodel = 'simulate:x'\nmax_tokens = 0\n", 4, "max_tokens"),
    ("[[step]]\nname = 'a'\nmodel = 'simulate:x'\ncolour = 'red'\n", 4, "colour"),
    ("steps = 1\n", None, "it needs [[step]] tables"),
    ("[[step]]\nname = 'a'\n\nmodels = ['simulate:x', 'x']\n", 4, "provider:model"),
    ("[[step]]\nname = 'a'\nmodel = simulate:x\n", 3, "not valid TOML"),
    ("[[step]]\nname = 'a'\nmodel = 'simulate:x'\nprompt = '{nothere}'\n", None, "nothere"),
    ("[[step]]\nname = 'a'\nmodel = 'simulate:x'\nkind = 'debate'\n", 4, "two or more models"),
    (
        "[[step]]\nname = 'a'\nmodels = ['simulate:x', 'simulate:y']\nprompt = '{context}'\n"
        "kind = 'debate'\nrevise_prompt = '{own_answer} {b.answers}'\n",
        6,
        "no such step",
    ),
    (
        "[[step]]\nname = 'a'\nmodel = 'simulate:x'\nrevise_prompt = 'again: {own_answer}'\n",
        4,
        'kind = "debate"',
    ),
    ("[[step]]\nname = 'a'\nmodel = 'simulate:x'\n\nkind = 'revise'\n", 5, "debate"),
    (
        "[[step]]\nname = 'a'\nmodels = ['simulate:x', 'simulate:y']\nkind = 'debate'\n\n"
        "[[step]]\nname = 'a-revised'\nmodel = 'simulate:x'\nprompt = '{answers}'\n",
        7,
        "a second step has this name",
    ),
]


@pytest.mark.parametrize(("text", "line", "says"), BAD_FILES)
def test_a_bad_pipeline_file_is_refused_in_one_line_naming_it(
    tmp_path: Path, text: str, line: int | None, says: str
) -> None:
    path = pipeline_file(tmp_path, text)
    done = batchdeck("run", TICKETS, "--pipeline", str(path), *FAST, home=tmp_path)
    assert done.returncode == 2
    (message,) = done.stderr.strip().splitlines()
    assert message.startswith("batchdeck: error: ") and says in message, message
    if line is not None:
        assert f"{path}, line {line}:" in message, message
    assert not (tmp_path / "runs").exists()


def test_a_try_then_the_full_run_pays_only_for_the_items_not_tried(tmp_path: Path) -> None:
    """Over real HTTP to the fake server: the try's answers, both steps' (the second read
    the first's answer), come back from the response cache in the full run."""
    key = "sk-try-0123456789abcdef"
    source = tmp_path / "items.jsonl"
    source.write_bytes(
        b"".join(orjson.dumps({"id": f"t{i}", "context": f"ticket {i}"}) + b"\n" for i in range(20))
    )
    with run_fake_server(api_key=key, latency_ms=1) as server:
        steps = pipeline_file(
            tmp_path,
            '[[step]]\nname = "extract"\nmodel = "openai:gpt-4o-mini"\nprompt = "{context}"\n\n'
            '[[step]]\nname = "classify"\nmodel = "openai:gpt-4o-mini"\n'
            'prompt = "label: {extract.output}"\n',
        )
        common = ("--pipeline", str(steps), "--base-url", server.openai_base_url)
        env = {"OPENAI_API_KEY": key}
        tried = batchdeck("try", str(source), "--n", "5", *common, home=tmp_path, extra_env=env)
        assert tried.returncode == 0, tried.stderr
        assert server.stats()["requests"] == 10
        assert tried.stdout.count("  classify openai:gpt-4o-mini: ") == 5
        assert "the full input (20 items): ~$" in tried.stdout
        assert not (tmp_path / "runs").exists()  # a try leaves no run behind
        server.reset()
        done = batchdeck("run", str(source), *common, home=tmp_path, extra_env=env)
        assert done.returncode == 0, done.stderr
        assert server.stats()["requests"] == 30
        assert "10 answers from the cache" in done.stderr


def test_a_pipeline_runs_in_batch_mode(tmp_path: Path) -> None:
    """``--batch`` sends every step's calls through batch jobs: each item still gets all
    three steps, each read the step before, and each call cost the batch price."""
    run_dir = tmp_path / "run"
    done = batchdeck(
        "run", TICKETS, "--pipeline", str(pipeline_file(tmp_path)), "--batch",
        "--sim-batch-s", "0.2", "--poll-s", "0.1", "--run-dir", str(run_dir), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logged = [log.result_from_record(r) for r in results(run_dir)]
    assert len(logged) == 180 and {r.status for r in logged} == {"ok"}
    table = PriceTable.load()
    for r in logged:
        price = table.lookup(r.model.split("/")[1].removesuffix("@batch"))
        assert price is not None and r.cost_usd == price.batch().cost(r.usage)
    jobs = log.scan(run_dir / "log.jsonl").batches.values()
    assert {job.model.split("/")[0] for job in jobs} == {"extract", "classify", "summarise"}
    assert all(job.closed for job in jobs)


def test_finish_online_after_is_refused_for_a_pipelines_batch_steps(tmp_path: Path) -> None:
    done = batchdeck(
        "run", TICKETS, "--pipeline", str(pipeline_file(tmp_path)), "--batch",
        "--finish-online-after", "60", home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    (message,) = done.stderr.strip().splitlines()
    assert "--finish-online-after is not built for a pipeline's batch steps" in message
    assert not (tmp_path / "runs").exists()


def test_the_summary_counts_items_and_calls_apart(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = failing_pipeline(tmp_path, out)
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    ok = sum(row["status"] == "ok" for row in rows)
    assert 0 < ok < 60
    assert "60 items, 180 calls (3 per item: one per model of each step)" in done.stderr
    assert f"  items ok {ok:>8}" in done.stderr
    assert f"  not all ok {60 - ok:>6}" in done.stderr
    calls_ok = sum(r["head"][3] == "ok" for r in results(_run_dir(done.stderr)))  # type: ignore[index]
    assert f"  ok       {calls_ok:>8}" in done.stderr

    judged = batchdeck(
        "run", TICKETS, "--model", "simulate:gpt-4o-mini", "--model", "simulate:claude-haiku-4-5",
        "--judge", "simulate:gpt-4o", *FAST, home=tmp_path,
    )  # fmt: skip
    assert "60 items, 180 calls (3 per item" in judged.stderr
    assert "  items ok       60  100.0%" in judged.stderr


def test_max_item_cost_caps_each_item_over_all_its_steps(tmp_path: Path) -> None:
    """Each call of these items fits the cap alone, their sum does not: every item's total
    stays within it, and an item whose next step could pass it stops there (``budget``)."""
    cap = 0.00006
    steps = pipeline_file(
        tmp_path,
        '[[step]]\nname = "extract"\nmodel = "simulate:gpt-4o-mini"\n'
        'prompt = "List what this ticket is about: {context}"\n\n'
        '[[step]]\nname = "classify"\nmodel = "simulate:gpt-4o-mini"\n'
        'prompt = "Label this ticket: {extract.output}"\n\n'
        '[[step]]\nname = "summarise"\nmodel = "simulate:gpt-4o-mini"\n'
        'prompt = "Summarise: {classify.output}"\n',
    )
    out = tmp_path / "out.jsonl"
    done = batchdeck(
        "run", TICKETS, "--pipeline", str(steps), "--max-item-cost", str(cap), *FAST,
        "--output", str(out), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(rows) == 60 and all(row["cost_usd"] <= cap for row in rows)
    stopped = [row for row in rows if row["error"] == "summarise: budget"]
    assert stopped
    for row in stopped:
        (lane,) = row["steps"]["summarise"].values()
        assert lane["status"] == "skipped" and f"--max-item-cost {usd(cap)}" in lane["error"]
        assert row["steps"]["classify"]["simulate:gpt-4o-mini"]["cost_usd"] > 0


def test_max_item_cost_caps_each_item_over_its_models(tmp_path: Path) -> None:
    """Two models, no steps: each call fits the cap alone, and the item's two together stay
    within it (each model's call gets a fair share of what the item has left)."""
    cap = 0.000035
    two = tmp_path / "two.jsonl"
    done = batchdeck(
        "run", TICKETS, "--model", "simulate:gpt-4o-mini", "--model", "simulate:gpt-4.1-nano",
        "--max-item-cost", str(cap), *FAST, "--output", str(two), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    spent: dict[str, float] = {}
    ran = set()
    for line in two.read_bytes().splitlines():
        row = orjson.loads(line)
        spent[row["id"]] = spent.get(row["id"], 0.0) + row["cost_usd"]
        if row["status"] == "skipped":
            assert f"--max-item-cost {usd(cap)}" in row["error"]
        else:
            ran.add(row["model"])
    assert len(spent) == 60 and max(spent.values()) <= cap
    assert ran == {"simulate:gpt-4o-mini", "simulate:gpt-4.1-nano"}


DEBATERS = ("simulate:gpt-4o-mini", "simulate:claude-haiku-4-5", "simulate:gpt-4.1-nano")


def test_a_debate_file_reads_as_two_steps_and_the_step_after_reads_the_revisions(
    tmp_path: Path,
) -> None:
    path = pipeline_file(
        tmp_path,
        f"""
[[step]]
name = "label"
models = {list(DEBATERS[:2])}
prompt = "Label: {{context}}"
kind = "debate"
max_tokens = 64

[[step]]
name = "pick"
model = "simulate:gpt-4o"
kind = "judge"
""",
    )
    steps = load_pipeline(path)
    assert [(s.name, s.kind, s.models) for s in steps] == [
        ("label", "plain", DEBATERS[:2]),
        ("label-revised", "revise", DEBATERS[:2]),
        ("pick", "judge", ("simulate:gpt-4o",)),
    ]
    assert steps[1].max_tokens == 64 and steps[1].prompt is None
    graph = build_graph(steps)
    assert graph.step("label-revised").revises == "label"
    assert graph.step("pick").depends == ("label-revised",)
    assert steps[2].output_schema is None  # the judge's schema names the revisers
    assert graph.step("pick").spec.output_schema["properties"]["best"]["enum"] == list(DEBATERS[:2])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--model", "simulate:gpt-4o-mini", "--debate"), "--debate needs two or more --model"),
        (("--model", "simulate:gpt-4o-mini", "--revise-prompt", "x"), "--revise-prompt needs"),
        (
            (
                "--debate",
                "--model",
                "simulate:a",
                "--model",
                "simulate:b",
                "--revise-prompt",
                "{own_answer} {nope.answers}",
            ),
            "no such step",
        ),  # fmt: skip
    ],
)
def test_bad_debate_flags_are_refused_in_one_line(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    done = batchdeck("run", TICKETS, *args, *FAST, home=tmp_path)
    assert done.returncode == 2
    (message,) = done.stderr.strip().splitlines()
    assert message.startswith("batchdeck: error: ") and says in message, message
    assert not (tmp_path / "runs").exists()
    piped = batchdeck(
        "run", TICKETS, "--pipeline", str(pipeline_file(tmp_path)), "--debate", home=tmp_path
    )
    assert piped.returncode == 2 and "--debate with --pipeline" in piped.stderr


def test_a_debate_on_simulate_gives_first_answers_revisions_and_a_verdict(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    models = [arg for model in DEBATERS for arg in ("--model", model)]
    done = batchdeck(
        "run", TICKETS, *models, "--debate", "--judge", "simulate:gpt-4o", *FAST,
        "--output", str(out), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(rows) == 60
    changed = 0
    for row in rows:
        steps = row["steps"]
        assert list(steps) == ["answer", "answer-revised", "judge"]
        first = {model: lane["output"] for model, lane in steps["answer"].items()}
        revised = {model: lane["output"] for model, lane in steps["answer-revised"].items()}
        assert set(first) == set(revised) == set(DEBATERS)
        for model in DEBATERS:  # simulate keeps its own, or takes up the first other's
            other = next(m for m in DEBATERS if m != model)
            assert revised[model] in (first[model], first[other])
            changed += revised[model] != first[model]
        (verdict,) = steps["judge"].values()
        assert verdict["parsed"]["best"] in DEBATERS
        assert row["cost_usd"] == pytest.approx(
            sum(lane["cost_usd"] for step in steps.values() for lane in step.values())
        )
    assert changed  # a revision is seen to move

    compared = batchdeck("compare", str(_run_dir(done.stderr)), "--format", "json", home=tmp_path)
    boards = {board["step"]: board for board in orjson.loads(compared.stdout)["steps"]}
    assert set(boards) == {"answer", "answer-revised"}
    assert boards["answer"]["judges"] == [] and all(
        m["wins"] is None for m in boards["answer"]["models"]
    )
    final = {m["model"]: m for m in boards["answer-revised"]["models"]}
    assert sum(m["wins"] for m in final.values()) == 60
    firsts = {m["model"]: m for m in boards["answer"]["models"]}
    for model in DEBATERS:  # the final answer cost both calls
        assert final[model]["mean_cost_usd"] > firsts[model]["mean_cost_usd"]


def test_the_revise_prompt_shows_each_model_the_others_first_answers_not_its_own(
    tmp_path: Path,
) -> None:
    """Short items, so simulate's answer echoes a whole prompt: each revision was sent the
    other models' first answers, under their labels, and not its own."""
    source = tmp_path / "items.jsonl"
    source.write_bytes(
        b"".join(orjson.dumps({"id": f"i{i}", "context": f"word{i}"}) + b"\n" for i in range(5))
    )
    out = tmp_path / "out.jsonl"
    models = [arg for model in DEBATERS for arg in ("--model", model)]
    done = batchdeck(
        "run", str(source), *models, "--prompt", "say {context}", "--debate",
        "--revise-prompt", "{other_answers}", *FAST, "--output", str(out), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for line in out.read_bytes().splitlines():
        steps = orjson.loads(line)["steps"]
        first = {model: lane["output"] for model, lane in steps["answer"].items()}
        for model, lane in steps["answer-revised"].items():
            seen = " ".join(lane["output"].split()[1:])  # what simulate echoed of its prompt
            for other in DEBATERS:
                said = f"--- {other} --- {first[other]}"
                assert (said in seen) == (other != model), (model, seen)


def test_resume_after_sigkills_mid_debate_finishes_every_round_once(tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_bytes(
        b"".join(orjson.dumps({"id": f"t{i:03d}", "context": f"ticket {i}"}) + b"\n"
                 for i in range(200))
    )  # fmt: skip
    steps = pipeline_file(
        tmp_path,
        f'[[step]]\nname = "answer"\nmodels = {list(DEBATERS[:2])}\nprompt = "{{context}}"\n'
        'kind = "debate"\n\n[[step]]\nname = "judge"\nmodel = "simulate:gpt-4o"\nkind = "judge"\n',
    )
    run_dir = tmp_path / "killed"
    first = ("run", str(source), "--pipeline", str(steps), "--sim-latency-ms", "5",
             "--workers", "4", "--run-dir", str(run_dir))  # fmt: skip
    for n, at in enumerate((100, 350, 600)):
        _kill_once_logged(first if n == 0 else ("resume", str(run_dir)), run_dir, tmp_path, at)
    lanes: dict[str, set[str]] = {}
    for record in results(run_dir):
        model, item_id = record["head"][:2]  # type: ignore[index]
        lanes.setdefault(str(item_id), set()).add(str(model).split("/")[0])
    assert any(steps == {"answer"} for steps in lanes.values())  # killed mid-debate

    done = batchdeck("resume", str(run_dir), home=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    keys = [tuple(r["head"][:2]) for r in results(run_dir)]  # type: ignore[index]
    assert len(keys) == len(set(keys)) == 200 * 5  # every lane of every item, each exactly once
    exported = batchdeck("export", str(run_dir), home=tmp_path)
    rows = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 200 and all(row["status"] == "ok" for row in rows)
    for row in rows:
        first_of = {m: lane["output"] for m, lane in row["steps"]["answer"].items()}
        for lane in row["steps"]["answer-revised"].values():
            assert lane["output"] in first_of.values()  # it read the first answers kept
