"""Every setting is declared once, on the model; flags, variables, the file and resume follow."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from engine import (
    SETTINGS,
    ConfigError,
    Run,
    RunConfig,
    Setting,
    config_file,
    env_settings,
    file_settings,
    make_config,
    settings_of,
    with_settings,
)
from engine._config import _SPEED_FIELDS
from engine.cli._args import CALL_OVERRIDES, build_parser, config_from_args
from tests.cli import REPO, SAMPLES, batchdeck

TICKETS = str(SAMPLES / "tickets.jsonl")


def other_value(setting: Setting) -> Any:
    """A valid value of ``setting`` that is not its default."""
    candidates = [*setting.choices, 2, 1, 0.5, 3, 0]  # 0: False, for a switch that is on
    for raw in candidates:
        try:
            value = setting.parse(raw)
        except ConfigError:
            continue
        if value != setting.default:
            return value
    raise AssertionError(f"no other value for {setting.name}")


def subcommand(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = commands.choices[name]
    return parser


def flags_of(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


WHAT_THE_RUN_IS = {
    "input", "format", "prompt", "system", "models", "stop", "params", "schema_ref",
    "output_schema", "base_url", "base_urls", "steps",
}  # fmt: skip
"""RunConfig's fields that say what runs rather than how: set per run, never a default."""


def _leaves(model: type[BaseModel], prefix: str = "") -> set[str]:
    found = set()
    for name, info in model.model_fields.items():
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            found |= _leaves(group, f"{prefix}{name}.")
        else:
            found.add(prefix + name)
    return found


def test_every_field_is_a_declared_setting_or_part_of_what_runs() -> None:
    """A knob added without its ``Tunable`` would have no flag, no form field, and would
    silently enter the fingerprint (refusing to resume every existing run): refuse it here."""
    declared = {".".join(setting.path) for setting in SETTINGS}
    undeclared = _leaves(RunConfig) - WHAT_THE_RUN_IS - declared
    assert not undeclared, f"give {undeclared} a Tunable beside the field (engine/_config.py)"
    assert declared <= _leaves(RunConfig)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_setting_has_its_flag_and_reaches_the_config(setting: Setting) -> None:
    value = other_value(setting)
    for command in ("run", "estimate"):
        assert setting.flag in flags_of(subcommand(command))
    if isinstance(value, bool):  # a switch: --name, or --no-name
        given = [setting.flag if value else "--no-" + setting.flag.removeprefix("--")]
    else:
        given = [setting.flag, str(value)]
    args = build_parser().parse_args(["run", TICKETS, *given])
    assert settings_of(config_from_args(args))[setting.name] == value
    on_resume = setting.flag in flags_of(subcommand("resume"))
    if setting.name in CALL_OVERRIDES:  # for the calls a resume sends, not the run's setting
        assert on_resume and setting.about.changes_results
    else:
        assert on_resume is not setting.about.changes_results


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_only_settings_that_change_results_are_fingerprinted(setting: Setting) -> None:
    base = make_config(input=TICKETS)
    changed = with_settings(base, {setting.name: other_value(setting)})
    assert settings_of(changed)[setting.name] != settings_of(base)[setting.name]
    same = changed.fingerprint() == base.fingerprint()
    assert same is not setting.about.changes_results


def test_resume_help_says_resume_keeps_the_runs_values() -> None:
    text = " ".join(subcommand("resume").format_help().split())
    assert "(default 8)" not in text and "keeps the settings the run was saved with" in text
    assert "--workers N calls in flight at once (default: the run's)" in text
    assert "--time-limit S stop sending after S seconds (default: none; it counts" in text
    run_help = " ".join(subcommand("run").format_help().split())
    assert "--workers N calls in flight at once (default: 8)" in run_help
    assert "--rpm N requests per minute per model (default: learned) " in run_help
    assert "BATCHDECK_WORKERS=16" in run_help and "config.toml" in run_help


def test_a_bad_flag_value_is_refused_by_the_declared_bounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", TICKETS, "--retries", "101"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--retries" in err and "less than or equal to 100" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"workers": 0}, "workers"),
        ({"retry": {"retries": -1}}, "retries"),
        ({"retry": {"base_s": -1}}, "retry_wait"),
        ({"sim": {"failure_rate": 2}}, "sim_failure_rate"),
        ({"models": ()}, "models"),
    ],
)
def test_a_config_error_names_its_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_config(input=TICKETS, **values)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")


def test_the_file_and_the_environment_give_settings_by_name(batchdeck_home: Path) -> None:
    path = config_file()
    assert path == batchdeck_home / "config" / "config.toml"
    assert file_settings() == {}
    path.parent.mkdir(parents=True)
    path.write_text('workers = 5\nretries = 0\ndurability = "flush"\nmax_cost = 2\n')
    assert file_settings() == {"workers": 5, "retries": 0, "durability": "flush", "max_cost": 2.0}
    env = {"BATCHDECK_WORKERS": "6", "BATCHDECK_SIM_SEED": "9", "BATCHDECK_HOME": "x"}
    assert env_settings(env) == {"workers": 6, "sim_seed": 9}
    assert env_settings({"BATCHDECK_MAX_COST": " "}) == {}


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("workers = 0\n", ("workers", "greater than or equal to 1")),
        ('durability = "sometimes"\n', ("durability", "'fsync' or 'flush'")),
        ("worker = 4\n", ("worker", "not a setting")),
        ("workers = \n", ("not valid TOML",)),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_setting(
    content: str, names: tuple[str, ...]
) -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigError) as error:
        file_settings()
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert all(name in message for name in names)


def test_a_bad_variable_names_the_variable_and_the_setting() -> None:
    with pytest.raises(ConfigError) as error:
        env_settings({"BATCHDECK_MAX_ITEMS": "lots"})
    assert str(error.value).startswith("BATCHDECK_MAX_ITEMS='lots': max_items: ")
    assert error.value.field == "max_items"


def test_a_flag_beats_a_variable_beats_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    config_file().parent.mkdir(parents=True)
    config_file().write_text("workers = 5\nretries = 1\nmax_cost = 3\n")

    def settings(*flags: str) -> dict[str, Any]:
        return settings_of(config_from_args(build_parser().parse_args(["run", TICKETS, *flags])))

    assert [settings()[name] for name in ("workers", "retries", "max_cost")] == [5, 1, 3.0]
    monkeypatch.setenv("BATCHDECK_WORKERS", "6")
    monkeypatch.setenv("BATCHDECK_RETRIES", "2")
    assert [settings()[name] for name in ("workers", "retries", "max_cost")] == [6, 2, 3.0]
    found = settings("--workers", "7")
    assert [found[name] for name in ("workers", "retries", "max_cost")] == [7, 2, 3.0]


def test_resume_takes_settings_by_name_and_keeps_the_rest(tmp_path: Path) -> None:
    config = make_config(input=TICKETS, workers=3, time_limit=9.0, retry={"retries": 5})
    run = Run.create(config, tmp_path / "run")
    values = settings_of(run.for_resume(retries=1, max_backoff=2.0).config)
    assert (values["workers"], values["retries"], values["max_backoff"]) == (3, 1, 2.0)
    assert values["time_limit"] is None  # counts per invocation
    with pytest.raises(ConfigError) as error:
        run.for_resume(max_tokens=5)
    assert error.value.field == "max_tokens" and "cannot change on resume" in str(error.value)


def test_resume_ignores_the_new_run_defaults(tmp_path: Path) -> None:
    """config.toml and BATCHDECK_* are defaults for new runs: a resume keeps the run's own."""
    first = batchdeck("run", TICKETS, "--sim-latency-ms", "0", "--workers", "3", home=tmp_path)
    assert first.returncode == 0, first.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.toml").write_text("workers = 5\n")
    env = {"BATCHDECK_WORKERS": "6"}
    again = batchdeck("resume", str(run_dir), "--retries", "1", home=tmp_path, extra_env=env)
    assert again.returncode == 0, again.stderr
    saved = settings_of(Run.open(run_dir).config)
    assert (saved["workers"], saved["retries"]) == (3, 1)


NEW_SETTINGS = (
    '    test_knob: Annotated[float | None, Field(gt=0), Tunable("a knob", "Knob s", "S")] = None\n'
    '    test_switch: Annotated[bool, Tunable("a switch", "Switch")] = False\n'
)


def test_a_new_setting_is_one_declaration(tmp_path: Path) -> None:
    """Add one field (a number, and a switch) to a copy of the source and nothing else: the
    flag, the variable, the file key, the form field, the saved default and resume have it."""
    source = tmp_path / "src"
    for package in ("engine", "tui", "themes"):
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    config = source / "engine" / "_config.py"
    text = config.read_text()
    anchor = "    base_url: str | None = None\n"
    assert anchor in text
    config.write_text(text.replace(anchor, anchor + NEW_SETTINGS))
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text("test_knob = 2.5\ntest_switch = true\n")
    env = {**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{REPO}", "BATCHDECK_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.engine._new_setting"],
        cwd=source,
        env={**env, "RUN_DIR": str(tmp_path / "run")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["engine", "cli", "env", "file", "form", "saved", "resume"]


@pytest.mark.parametrize(
    ("file", "env", "named"),
    [
        ("workers = -1\n", {}, ("config.toml", "workers")),
        ("", {"BATCHDECK_MAX_COST": "two"}, ("BATCHDECK_MAX_COST", "max_cost")),
    ],
)
def test_the_command_refuses_a_bad_file_or_variable_in_one_line(
    tmp_path: Path, file: str, env: dict[str, str], named: tuple[str, ...]
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(file)
    done = batchdeck("run", TICKETS, home=tmp_path, extra_env=env)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("batchdeck: error: ") and all(name in line for name in named)
    assert not (tmp_path / "runs").exists()


def test_a_run_without_per_model_urls_keeps_the_fingerprint_it_had_before_them() -> None:
    """Runs started before ``base_urls`` and ``steps`` existed must still resume: their log's
    header holds a fingerprint made without those fields."""
    config = make_config(input=TICKETS, models=("llamacpp:smollm2", "openai:gpt-4o-mini"))
    before = config.model_dump(
        mode="json", exclude={**_SPEED_FIELDS, "base_urls": True, "steps": True}
    )
    expected = hashlib.sha256(orjson.dumps(before, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert config.fingerprint() == expected
    url = {"llamacpp:smollm2": "http://127.0.0.1:8080/v1"}
    own = make_config(input=TICKETS, models=("llamacpp:smollm2",), base_urls=url)
    assert own.fingerprint() != make_config(input=TICKETS, models=own.models).fingerprint()
