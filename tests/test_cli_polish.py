"""The CLI as a new user and a script meet it: --version, --json, completion, no terminal,
help texts, the runs table, and the demo."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

import orjson

from tests.cli import COMMAND, REPO, SAMPLES, batchdeck, env

FAST = ("--sim-latency-ms", "0")


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    done = batchdeck("--version", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"batchdeck {version('batchdeck')}"


def test_bare_batchdeck_without_a_terminal_prints_help_and_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        COMMAND,
        cwd=REPO,
        env=env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("usage: batchdeck") and "COMMAND" in done.stderr
    assert done.stdout == ""


def test_runs_json_lists_each_run(tmp_path: Path) -> None:
    assert orjson.loads(batchdeck("runs", "--json", home=tmp_path).stdout) == []
    done = batchdeck("run", str(SAMPLES / "headlines.txt"), *FAST, home=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = batchdeck("runs", "--json", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (run,) = orjson.loads(listed.stdout)
    assert run["state"] == "finished" and run["done"] == run["total"] == run["ok"] == 40
    assert run["models"] == ["simulate:gpt-4o-mini"] and run["holder"] is None
    assert run["input"] == str(SAMPLES / "headlines.txt") and Path(run["run_dir"]).is_dir()


def test_estimate_json_has_the_figures_the_text_shows(tmp_path: Path) -> None:
    args = ("estimate", str(SAMPLES / "tickets.jsonl"), "--model", "openai:gpt-4o-mini")
    shown = batchdeck(*args, home=tmp_path)
    done = batchdeck(*args, "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    found = orjson.loads(done.stdout)
    assert found["items"] == 60 and found["calls"] == 60 and found["workers"] == 8
    (model,) = found["models"]
    assert model["model"] == "openai:gpt-4o-mini"
    assert f"${model['cost_low']:.4f} (prompts only)" in shown.stdout
    assert found["cost_high"] == model["cost_high"] > found["cost_low"] > 0


def test_keys_json_shows_where_a_key_is_without_the_key(tmp_path: Path) -> None:
    key = "sk-" + "q" * 40 + "wxyz"
    done = batchdeck("keys", "--json", home=tmp_path, extra_env={"OPENAI_API_KEY": key})
    assert done.returncode == 0, done.stderr
    assert key not in done.stdout
    by_name = {status["provider"]: status for status in orjson.loads(done.stdout)}
    assert by_name["openai"] == {
        "provider": "openai",
        "present": True,
        "required": True,
        "source": "env OPENAI_API_KEY",
        "masked": "sk-…wxyz",
    }
    assert by_name["anthropic"]["present"] is False and by_name["ollama"]["required"] is False


def test_runs_table_columns_line_up_under_their_headers(tmp_path: Path) -> None:
    headlines = str(SAMPLES / "headlines.txt")
    models = ("--model", "simulate:gpt-4o-mini", "--model", "simulate:claude-3-5-haiku")
    assert batchdeck("run", headlines, *FAST, *models, home=tmp_path).returncode == 0
    assert batchdeck("run", headlines, *FAST, home=tmp_path).returncode == 0
    header, *rows = batchdeck("runs", home=tmp_path).stdout.splitlines()
    assert len(rows) == 2
    for column in ("MODEL", "INPUT"):
        at = header.index(column)
        assert all(row[at - 2 : at] == "  " and row[at] != " " for row in rows), (header, rows)
    assert all(row[header.index("INPUT") :] == headlines for row in rows)


def test_resume_help_says_what_retry_failed_and_force_do(tmp_path: Path) -> None:
    for command in ("resume", "run"):
        shown = " ".join(batchdeck(command, "--help", home=tmp_path).stdout.split())
        assert "run the failed and skipped items again" in shown
        assert "finished items are then matched by id" in shown
    shown = " ".join(batchdeck("run", "--help", home=tmp_path).stdout.split())
    assert "it keeps the settings it was saved with" in shown


def test_shell_completion_completes_commands_and_flags(tmp_path: Path) -> None:
    def complete(line: str) -> set[str]:
        answer = tmp_path / "completions"
        done = subprocess.run(
            COMMAND,
            cwd=REPO,
            env=env(
                tmp_path,
                _ARGCOMPLETE="3",  # python -m MODULE: the words start after the module
                COMP_LINE=line,
                COMP_POINT=str(len(line)),
                _ARGCOMPLETE_STDOUT_FILENAME=str(answer),
            ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return {word.strip() for word in answer.read_text().split("\013")}

    assert complete("python -m tui.launch ru") == {"run", "runs"}
    assert "--max-cost" in complete("python -m tui.launch run x.jsonl --max-c")


def test_demo_copies_the_samples_and_runs_them_offline(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = batchdeck("demo", home=tmp_path, cwd=work, extra_env={"BATCHDECK_SIM_LATENCY_MS": "0"})
    assert done.returncode == 0, done.stderr
    copied = work / "batchdeck-demo"
    assert (copied / "tickets.jsonl").read_bytes() == (SAMPLES / "tickets.jsonl").read_bytes()
    assert (copied / "schemas" / "ticket_label.json").is_file()
    assert "60 items" in done.stderr and "ok             60  100.0%" in done.stderr
    (run,) = orjson.loads(batchdeck("runs", "--json", home=tmp_path).stdout)
    assert run["input"] == str(copied / "tickets.jsonl") and run["ok"] == 60


def test_demo_keeps_a_sample_the_user_edited(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "tickets.jsonl").write_text('{"id": "only", "context": "mine"}\n')
    done = batchdeck(
        "demo", str(target), home=tmp_path, extra_env={"BATCHDECK_SIM_LATENCY_MS": "0"}
    )
    assert done.returncode == 0, done.stderr
    assert (target / "tickets.jsonl").read_text() == '{"id": "only", "context": "mine"}\n'
    assert (target / "reviews.csv").is_file() and "1 item\n" in done.stderr
