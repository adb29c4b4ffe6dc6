"""Run by ``test_a_new_setting_is_one_declaration`` against a copy of the source whose
``RunConfig`` gained two declared fields, ``test_knob`` and ``test_switch``, and nothing else;
prints each front end that has them (and fails on the first that does not)."""

from __future__ import annotations

import os
from pathlib import Path

import engine
from engine import Run, env_settings, file_settings, make_config, settings_of
from engine.cli._args import build_parser, config_from_args
from tui.model import FORM_FIELDS, Form, read_form
from tui.settings import Settings, load_settings, save_settings

assert Path(engine.__file__).parent.parent != Path(__file__).parent.parent.parent, "not a copy"
TICKETS = str(Path(__file__).parent.parent.parent / "sample_data" / "tickets.jsonl")

assert make_config(input=TICKETS, test_knob=1.5).test_knob == 1.5  # type: ignore[call-arg]
print("engine")
args = build_parser().parse_args(["run", TICKETS, "--test-knob", "3", "--no-test-switch"])
given = settings_of(config_from_args(args))  # over config.toml's test_switch = true
assert (given["test_knob"], given["test_switch"]) == (3.0, False), given
print("cli")
environ = {"BATCHDECK_TEST_KNOB": "4", "BATCHDECK_TEST_SWITCH": "yes"}
assert env_settings(environ) == {"test_knob": 4.0, "test_switch": True}
print("env")
assert file_settings() == {"test_knob": 2.5, "test_switch": True}
print("file")
labels = {field.name: field.label for field in FORM_FIELDS}
assert (labels["test_knob"], labels["test_switch"]) == ("Knob s", "Switch")
form = Form(TICKETS, ["simulate:gpt-4o-mini"], "", "", {"test_knob": "6", "test_switch": "yes"})
config = read_form(form)
assert not isinstance(config, list), config
assert (settings_of(config)["test_knob"], settings_of(config)["test_switch"]) == (6.0, True)
print("form")
save_settings(Settings(caps=settings_of(config)))
assert load_settings().settings.caps["test_switch"] is True
print("saved")
run = Run.create(config, Path(os.environ["RUN_DIR"]))
resumed = settings_of(run.for_resume(test_knob=7.0, test_switch=False).config)
assert (resumed["test_knob"], resumed["test_switch"]) == (7.0, False)
print("resume")
