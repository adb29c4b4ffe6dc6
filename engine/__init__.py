"""batchdeck's headless engine: readers, caps, providers, the checkpoint log and the CLI.

This is the surface the TUI (and anyone embedding batchdeck) uses; the modules
behind it are private by concern, as httpx's are. A run in four lines::

    run = Run.create(make_config(input="tickets.jsonl", prompt="Classify: {context}"))
    finished = await run.execute([print])      # any number of event subscribers
    # elsewhere, on the same loop: run.pause(), run.resume(), run.stop(), run.abort()
    export_to_file(run, Path("out.csv"), "csv")
    await Run.open(run_dir).replay([print])    # a past run's events, read from its log
"""

from engine._atomic import write_atomic
from engine._calibration import Calibration, calibration_of
from engine._compare import ModelScore, Scoreboard, StepScores
from engine._config import (
    DEFAULT_MODEL,
    SETTINGS,
    Mode,
    RetrySettings,
    RunConfig,
    Setting,
    SettingValues,
    SimSettings,
    Tunable,
    bare_model,
    config_fields,
    make_config,
    model_mode,
    settings_of,
    with_settings,
)
from engine._errors import (
    BatchdeckError,
    ConfigError,
    ErrorKind,
    InputError,
    LogCorrupt,
    LogError,
    LogWriteError,
    ProviderError,
    RunBusy,
    RunNotFound,
)
from engine._estimate import Estimate, ModelEstimate, estimate
from engine._events import (
    BatchJob,
    BatchJobEnded,
    BatchJobProgressed,
    BatchJobSubmitted,
    CacheWarning,
    CapReached,
    CostUpdated,
    Event,
    FinalState,
    InputWarning,
    ItemFinished,
    ItemRetrying,
    ItemsCounted,
    ItemStarted,
    LiveState,
    LogRecovered,
    RateLimitUpdated,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    RunState,
    RunStopping,
    Subscriber,
    WorkersChanged,
)
from engine._export import ExportChoice, ExportFormat, StatusFilter, format_for
from engine._item_rows import ItemRow
from engine._items import InvalidItem, Item
from engine._lanes import sent_prompt
from engine._lock import Holder
from engine._paths import config_dir
from engine._pipeline_file import load_pipeline
from engine._preview import Preview, preview_input
from engine._prices import Price, PriceTable
from engine._results import ErrorInfo, ItemResult, Status, Usage
from engine._run import Run
from engine._runs import (
    RunSummary,
    export_run,
    export_to_file,
    exports_dir,
    find_result,
    find_results,
    item_rows,
    list_runs,
    load_results,
    next_steps,
)
from engine._schema import load_schema
from engine._secrets import strip_url_credentials
from engine._sources import config_file, env_settings, file_settings
from engine._steps import REVISED, StepError, StepSpec, build_graph, debate_steps, split_lane
from engine._template import PromptTemplate, default_template_for, render_item, unknown_placeholders
from engine._try import create_try

__all__ = [
    "sent_prompt",
    "create_try",
    "Calibration",
    "calibration_of",
    "split_lane",
    "StepSpec",
    "debate_steps",
    "REVISED",
    "StepError",
    "build_graph",
    "load_pipeline",
    "item_rows",
    "ItemRow",
    "StepScores",
    "Scoreboard",
    "ModelScore",
    "DEFAULT_MODEL",
    "SETTINGS",
    "BatchJob",
    "BatchJobEnded",
    "BatchJobProgressed",
    "BatchJobSubmitted",
    "BatchdeckError",
    "CacheWarning",
    "CapReached",
    "ConfigError",
    "CostUpdated",
    "ErrorInfo",
    "ErrorKind",
    "Estimate",
    "Event",
    "ExportChoice",
    "ExportFormat",
    "Holder",
    "FinalState",
    "InputError",
    "InputWarning",
    "InvalidItem",
    "Item",
    "ItemFinished",
    "ItemResult",
    "ItemRetrying",
    "ItemStarted",
    "ItemsCounted",
    "LiveState",
    "LogCorrupt",
    "LogError",
    "LogRecovered",
    "LogWriteError",
    "Mode",
    "ModelEstimate",
    "Price",
    "Preview",
    "PriceTable",
    "PromptTemplate",
    "ProviderError",
    "RateLimitUpdated",
    "RetrySettings",
    "Run",
    "RunConfig",
    "RunFailed",
    "RunBusy",
    "RunFinished",
    "RunNotFound",
    "RunPaused",
    "RunResumed",
    "RunStarted",
    "RunState",
    "RunStopping",
    "RunSummary",
    "Setting",
    "SettingValues",
    "SimSettings",
    "Status",
    "StatusFilter",
    "Subscriber",
    "Tunable",
    "Usage",
    "WorkersChanged",
    "bare_model",
    "config_dir",
    "config_fields",
    "config_file",
    "default_template_for",
    "env_settings",
    "estimate",
    "export_run",
    "export_to_file",
    "exports_dir",
    "file_settings",
    "find_result",
    "find_results",
    "format_for",
    "list_runs",
    "load_results",
    "load_schema",
    "make_config",
    "model_mode",
    "next_steps",
    "preview_input",
    "render_item",
    "settings_of",
    "strip_url_credentials",
    "unknown_placeholders",
    "with_settings",
    "write_atomic",
]
