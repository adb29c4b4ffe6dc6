"""The Setup form's logic, without the app: its fields, what they start as, what they describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import DEFAULT_MODEL, SETTINGS, RunConfig, settings_of
from tests.engine.test_settings import other_value
from tests.tui._flows import TICKETS
from tui.model import FORM_FIELDS, PATH_FIELD, Form, FormProblem, initial_texts, read_form
from tui.model._setup import MODELS_FIELD, SCHEMA_FIELD, parse_value
from tui.settings import Settings, load_settings, save_settings


def form(**texts: str) -> Form:
    return Form(str(TICKETS), [DEFAULT_MODEL], "", "", texts)


def test_values_parse_as_their_kind() -> None:
    assert parse_value(" ", "int") is None
    assert parse_value("3", "int") == 3
    assert parse_value("0.5", "float") == 0.5
    assert parse_value("flush", "choice") == "flush"
    with pytest.raises(ValueError, match="whole number"):
        parse_value("2.5", "int")


def test_there_is_a_field_for_every_setting_and_the_schema() -> None:
    by_name = {field.name: field for field in FORM_FIELDS}
    assert set(by_name) == {setting.name for setting in SETTINGS} | {SCHEMA_FIELD}
    assert (by_name["workers"].label, by_name["workers"].placeholder) == ("Workers", "8")
    assert (by_name["max_cost"].placeholder, by_name["rpm"].placeholder) == ("no cap", "learned")


def test_every_setting_goes_from_saved_to_form_to_config_and_back() -> None:
    """A run's settings, remembered, shown in the form and read back, are the same settings."""
    values = {setting.name: other_value(setting) for setting in SETTINGS}
    values["cache"] = True  # --cache-only answers from the cache: it cannot go with --no-cache
    save_settings(Settings(caps=values))
    texts, warning = initial_texts(load_settings().settings.caps)
    assert warning is None
    config = read_form(form(**texts))
    assert isinstance(config, RunConfig)
    assert settings_of(config) == values


def test_blank_fields_mean_the_engine_defaults() -> None:
    config = read_form(form())
    assert isinstance(config, RunConfig)
    assert settings_of(config) == settings_of(RunConfig(input=str(TICKETS)))


def test_a_variable_comes_before_the_remembered_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHDECK_WORKERS", "16")
    texts, warning = initial_texts({"workers": 3, "max_cost": 0.5})
    assert (texts["workers"], texts["max_cost"], texts["retries"], warning) == (
        "16",
        "0.5",
        "",
        None,
    )
    monkeypatch.setenv("BATCHDECK_RETRIES", "many")
    texts, warning = initial_texts({"workers": 3})
    assert texts["workers"] == "3"
    assert warning is not None and "BATCHDECK_RETRIES" in warning and "\n" not in warning


@pytest.mark.parametrize(
    ("texts", "field", "message"),
    [
        ({"workers": "abc"}, "workers", "Workers: a whole number, please"),
        ({"workers": "0"}, "workers", "workers: Input should be greater than or equal to 1"),
        ({"sim_failure_rate": "2"}, "sim_failure_rate", "sim_failure_rate: "),
        ({"retry_wait": "-1"}, "retry_wait", "retry_wait: "),
        ({"durability": "often"}, "durability", "durability: Input should be 'fsync' or 'flush'"),
        ({SCHEMA_FIELD: "no/such/schema.json"}, SCHEMA_FIELD, ""),
    ],
)
def test_a_bad_value_is_reported_against_its_field(
    texts: dict[str, str], field: str, message: str
) -> None:
    (problem,) = read_form(form(**texts))
    assert problem.field == field
    assert problem.message.startswith(message) and "\n" not in problem.message


def test_what_is_missing_is_said_unless_quiet(tmp_path: Path) -> None:
    empty = Form("", [], "", "", {})
    assert read_form(empty) == [
        FormProblem(MODELS_FIELD, "Pick at least one model."),
        FormProblem(PATH_FIELD, "Pick an input file."),
    ]
    assert read_form(empty, quiet=True) == [
        FormProblem(MODELS_FIELD, ""),
        FormProblem(PATH_FIELD, ""),
    ]


def test_prompt_and_system_blank_mean_none() -> None:
    config = read_form(Form(str(TICKETS), [DEFAULT_MODEL], "  ", "Be brief.", {}))
    assert isinstance(config, RunConfig)
    assert (config.prompt, config.system) == (None, "Be brief.")
