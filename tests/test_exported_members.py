"""``engine.__all__`` is the engine's public API, pinned: adding or removing a name is a
decision made here, in review, not a side effect of an import (as httpx's own test does).

The app imports nothing else from the engine (an import-linter contract checks that), so
this list is also everything the app relies on.
"""

from __future__ import annotations

from types import ModuleType

import engine

EXPORTED = {
    # running a batch
    "Run",
    "RunConfig",
    "RetrySettings",
    "SimSettings",
    "DEFAULT_MODEL",
    "make_config",
    "load_schema",
    # a model spec's mode: openai:gpt-4o-mini@batch (Setup sets it per model)
    "Mode",
    "bare_model",
    "model_mode",
    # every setting, declared once: the CLI, Setup, the config file and the environment
    "SETTINGS",
    "Setting",
    "SettingValues",
    "Tunable",
    "config_fields",
    "config_file",
    "env_settings",
    "file_settings",
    "settings_of",
    "with_settings",
    # the event stream
    "Event",
    "Subscriber",
    "RunStarted",
    "ItemsCounted",
    "ItemStarted",
    "ItemRetrying",
    "ItemFinished",
    "CostUpdated",
    "RateLimitUpdated",
    "WorkersChanged",
    "RunPaused",
    "RunResumed",
    "RunStopping",
    "BatchJob",
    "BatchJobEnded",
    "BatchJobProgressed",
    "BatchJobSubmitted",
    "CapReached",
    "LogRecovered",
    "InputWarning",
    "CacheWarning",
    "RunFailed",
    "RunFinished",
    "RunState",
    "LiveState",
    "FinalState",
    # results
    "ItemResult",
    "ErrorInfo",
    "ErrorKind",
    "Status",
    "Usage",
    # errors
    "BatchdeckError",
    "ConfigError",
    "InputError",
    "LogError",
    "LogCorrupt",
    "LogWriteError",
    "ProviderError",
    "RunNotFound",
    "RunBusy",
    # past runs
    "RunSummary",
    "list_runs",
    "load_results",
    "find_result",
    "find_results",
    "next_steps",
    "export_run",
    "export_to_file",
    "exports_dir",
    "ExportChoice",
    "ExportFormat",
    "StatusFilter",
    "format_for",
    # a run's models side by side (the Compare screen): one row per item, folded into scores
    "ItemRow",
    "item_rows",
    "split_lane",
    "Scoreboard",
    "StepScores",
    "ModelScore",
    # the prompt a pipeline step's lane sent, rendered again (the inspector)
    "sent_prompt",
    # a pipeline's steps (Setup's step editor): a step, and a debate over one; checked as the
    # run checks them, or read from a pipeline file
    "StepSpec",
    "debate_steps",
    "REVISED",
    "StepError",
    "build_graph",
    "load_pipeline",
    # before a run: input, prompt, cost
    "Item",
    "InvalidItem",
    "Preview",
    "preview_input",
    "PromptTemplate",
    "default_template_for",
    "render_item",
    "unknown_placeholders",
    "Estimate",
    "ModelEstimate",
    "estimate",
    "Price",
    "PriceTable",
    # a try: a few items on every model first, and the estimate calibrated by what they used
    "create_try",
    "Calibration",
    "calibration_of",
    # a run's lock: who holds it
    "Holder",
    # where things live, and writing them safely
    "config_dir",
    "write_atomic",
    # a base URL as it may be stored or shown (Setup remembers the models added by hand)
    "strip_url_credentials",
}


def test_the_exported_names_are_exactly_the_pinned_ones() -> None:
    """And nothing public is left unexported: a name imported into ``engine/__init__.py``
    without being listed is a mistake either way (export it deliberately, or import it where
    it is used)."""
    assert len(engine.__all__) == len(set(engine.__all__)), "a name is listed twice"
    assert set(engine.__all__) == EXPORTED
    public = {
        name
        for name, value in vars(engine).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == EXPORTED


def test_every_exported_name_imports_from_the_package() -> None:
    namespace: dict[str, object] = {}
    for name in sorted(EXPORTED):
        exec(f"from engine import {name}", namespace)
    assert sorted(EXPORTED) == sorted(name for name in namespace if name != "__builtins__")
