"""The run's settings: one validated, frozen pydantic model shared by the CLI, the TUI and the log.

A run dir keeps its config as ``config.json``; resuming reads it back, so what
ran before is what runs again. Keys never appear here: providers resolve them
from the environment when a run starts. The fingerprint covers what changes
results (prompt, models, schema, limits on output), not what only changes speed
(workers, rate limits, durability), so those can be changed on resume.

Every speed, cap and sampling knob is declared once, on its field here: type,
default and bounds as pydantic has them, and a ``Tunable`` beside them with its
help text, a short label and its unit. ``SETTINGS`` is derived from those
declarations by walking the model, and everything else that names a knob is
derived from ``SETTINGS``: the CLI flags, the ``BATCHDECK_*`` variables and
``config.toml`` keys (``engine._sources``), the app's form and saved defaults,
what a resume may change, and what the fingerprint leaves out. A knob inside a
nested group (``retry``, ``sim``) keeps its place in ``config.json`` but has one
flat public name (``retries``, ``sim_seed``) everywhere else. No number may be
infinite or NaN: ``--max-cost inf`` is no cap a budget can count in.
"""

from __future__ import annotations

import functools
import hashlib
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from typing_extensions import TypedDict

from engine._errors import ConfigError
from engine._reasoning import Effort
from engine._secrets import strip_url_credentials
from engine._steps import StepSpec, build_graph

Format = Literal["jsonl", "csv", "txt", "json"]
Durability = Literal["fsync", "flush"]
PromptCache = Literal["auto", "off"]

DEFAULT_MODEL = "simulate:gpt-4o-mini"
ENV_PREFIX = "BATCHDECK_"


@dataclass(frozen=True, slots=True)
class Tunable:
    """What a user is told about a setting; the field's type, default and bounds say the rest."""

    help: str
    """What it does, for ``--help`` and the form (the default is added where it is shown)."""
    label: str
    """A few words, for the form."""
    unit: str = ""
    """``USD``, ``S``, ``N``...: the flag's metavar."""
    unset: str = ""
    """What leaving it unset means, when its default is None (``no cap``, ``learned``)."""
    name: str = ""
    """The public name of a field inside a group (``retry.base_s`` is ``retry_wait``)."""
    changes_results: bool = False
    """True when it decides an item's result: fingerprinted, fixed on resume."""
    per_invocation: bool = False
    """It counts per invocation, so a resume starts it afresh unless given again."""


class SimSettings(BaseModel):
    """How the offline ``simulate`` provider behaves."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    latency_ms: Annotated[
        float,
        Field(ge=0),
        Tunable(
            "simulate: median latency",
            "Sim latency ms",
            "MS",
            name="sim_latency_ms",
            changes_results=True,
        ),
    ] = 400.0
    failure_rate: Annotated[
        float,
        Field(ge=0, le=1),
        Tunable(
            "simulate: chance a call fails",
            "Sim failures",
            "P",
            name="sim_failure_rate",
            changes_results=True,
        ),
    ] = 0.0
    seed: Annotated[
        int,
        Tunable("simulate: random seed", "Sim seed", "N", name="sim_seed", changes_results=True),
    ] = 0
    batch_s: Annotated[
        float,
        Field(ge=0),
        Tunable(
            "simulate: seconds a batch job takes to end", "Sim batch s", "S", name="sim_batch_s"
        ),
    ] = 5.0


class RetrySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    retries: Annotated[
        int,
        Field(ge=0, le=100),
        Tunable("attempts after the first", "Retries", "N", name="retries"),
    ] = 3
    base_s: Annotated[
        float,
        Field(ge=0),
        Tunable(
            "first wait before a retry, doubling each time", "Retry wait s", "S", name="retry_wait"
        ),
    ] = 0.5
    cap_s: Annotated[
        float,
        Field(ge=0),
        Tunable(
            "longest wait between attempts (a server's retry-after may ask for more)",
            "Max backoff s",
            "S",
            name="max_backoff",
        ),
    ] = 60.0
    max_wait_s: Annotated[
        float,
        Field(gt=0),
        Tunable(
            "longest wait a server's Retry-After is trusted for",
            "Max server wait s",
            "S",
            name="max_retry_wait",
        ),
    ] = 300.0


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    input: str
    format: Format | None = None
    prompt: str | None = None
    """The run's template; None uses each item's ``prompt`` or the default for its fields."""
    system: str | None = None
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    workers: Annotated[
        int, Field(ge=1, le=4096), Tunable("calls in flight at once", "Workers", "N")
    ] = 8
    max_cost: Annotated[
        float | None,
        Field(ge=0),
        Tunable("hard cap on the run's spend", "Max run $", "USD", unset="no cap"),
    ] = None
    max_item_cost: Annotated[
        float | None,
        Field(ge=0),
        Tunable(
            "hard cap on one item's spend: all its calls (every model and step, retries "
            "included); with one model and no steps, its one call",
            "Max item $",
            "USD",
            unset="no cap",
        ),
    ] = None
    time_limit: Annotated[
        float | None,
        Field(gt=0),
        Tunable(
            "stop sending after S seconds", "Time limit s", "S", unset="none", per_invocation=True
        ),
    ] = None
    max_items: Annotated[
        int | None,
        Field(ge=0),
        Tunable("send at most N calls", "Max items", "N", unset="all", per_invocation=True),
    ] = None
    retry: RetrySettings = RetrySettings()
    timeout: Annotated[
        float | None,
        Field(gt=0),
        Tunable(
            "per-call timeout",
            "Timeout s",
            "S",
            unset="60; local 600",
            changes_results=True,
        ),
    ] = None
    """None: each model's provider's default (``engine.providers.default_timeout``)."""
    max_tokens: Annotated[
        int,
        Field(ge=1),
        Tunable("most output tokens per call", "Max tokens", "N", changes_results=True),
    ] = 512
    temperature: Annotated[
        float | None,
        Field(ge=0, le=2),
        Tunable(
            "sampling temperature",
            "Temperature",
            "X",
            unset="the provider's",
            changes_results=True,
        ),
    ] = None
    reasoning_effort: Annotated[
        Effort | None,
        Tunable(
            "reasoning models: how much to think before answering (OpenAI reasoning_effort, "
            "an Anthropic or Gemini thinking budget), within --max-tokens",
            "Reasoning effort",
            unset="the model's",
            changes_results=True,
        ),
    ] = None
    stop: tuple[str, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    schema_ref: str | None = None
    """``path/to/schema.json`` or ``module:PydanticModel``, as the user gave it."""
    output_schema: dict[str, Any] | None = None
    """The resolved JSON Schema (kept so a resume needs neither the file nor the module)."""
    rpm: Annotated[
        float | None,
        Field(gt=0),
        Tunable("requests per minute per model", "RPM", "N", unset="learned"),
    ] = None
    tpm: Annotated[
        float | None,
        Field(gt=0),
        Tunable("tokens per minute per model", "TPM", "N", unset="learned"),
    ] = None
    burst: Annotated[
        float,
        Field(gt=0, le=60),
        Tunable("seconds of rate limit calls may run ahead of the pace", "Burst s", "S"),
    ] = 1.0
    """Seconds of refill a rate-limit bucket holds: how far calls may run ahead of the pace."""
    base_url: str | None = None
    """The run's default API root, for every model without one of its own."""
    base_urls: dict[str, str] = Field(default_factory=dict)
    """A model's own API root (``--model llamacpp:smollm2=http://127.0.0.1:8080/v1``), by
    model: one run can compare two servers, or a local one with a hosted API."""
    allow_insecure_http: Annotated[
        bool,
        Tunable(
            "send API keys over plain http:// to a host that is not this machine",
            "Insecure http",
        ),
    ] = False
    durability: Annotated[
        Durability,
        Tunable(
            "fsync each log group, or only flush it (faster; a crash of the OS can lose "
            "the last group)",
            "Durability",
        ),
    ] = "fsync"
    batch: Annotated[
        bool,
        Tunable(
            "send every model through its provider's batch API (half price, results within "
            "24 h); a model named with @online stays online, one with @batch goes batch anyway",
            "Batch",
        ),
    ] = False
    batch_size: Annotated[
        int | None,
        Field(ge=1),
        Tunable("most requests in one batch job", "Batch size", "N", unset="the provider's limit"),
    ] = None
    max_parallel_batches: Annotated[
        int,
        Field(ge=1, le=1000),
        Tunable("batch jobs submitted and not yet ended at once", "Parallel batches", "N"),
    ] = 4
    poll_s: Annotated[
        float,
        Field(gt=0, le=3600),
        Tunable(
            "longest wait between two looks at a batch job (it starts at a few seconds)",
            "Poll s",
            "S",
        ),
    ] = 60.0
    cancel_at_time_limit: Annotated[
        bool,
        Tunable(
            "at --time-limit, cancel the run's batch jobs too (else they keep running "
            "server-side and resume fetches them)",
            "Cancel batches at time limit",
        ),
    ] = False
    finish_online_after: Annotated[
        float | None,
        Field(gt=0),
        Tunable(
            "items of a batch job still unfinished S seconds after it was submitted are "
            "cancelled there and run online",
            "Finish online after s",
            "S",
            unset="never",
        ),
    ] = None
    cache: Annotated[
        bool,
        Tunable(
            "answer a request the response cache holds from it, at no cost (answers are "
            "stored either way; --no-cache asks every one again)",
            "Response cache",
        ),
    ] = True
    cache_only: Annotated[
        bool,
        Tunable(
            "make no call: what the response cache cannot answer ends skipped",
            "Cache only",
            per_invocation=True,
        ),
    ] = False
    cache_max_gb: Annotated[
        float,
        Field(gt=0, le=1_000_000),
        Tunable(
            "the response cache's size on disk; the least recently used answers go first",
            "Cache max GB",
            "GB",
        ),
    ] = 5.0
    prompt_cache: Annotated[
        PromptCache,
        Tunable(
            "mark the system prompt and the template's fixed start for the provider's prompt "
            "cache when long enough (Anthropic; OpenAI and Gemini cache on their own)",
            "Prompt cache",
        ),
    ] = "auto"
    sim: SimSettings = SimSettings()
    steps: tuple[StepSpec, ...] = ()
    """A pipeline (``engine._steps``); empty for a run of one implicit step (``prompt``,
    ``system``, ``output_schema`` over ``models``). With steps, ``models`` is every model
    any step names, in order of first use."""

    @property
    def batch_models(self) -> frozenset[str]:
        """The models whose calls go through their provider's batch API."""
        return frozenset(m for m in self.models if model_mode(m, batch=self.batch) == "batch")

    @field_validator("cache_only")
    @classmethod
    def _only_with_the_cache(cls, only: bool, info: ValidationInfo) -> bool:
        if only and info.data.get("cache") is False:
            raise ValueError("answering only from the cache needs the cache: drop --no-cache")
        return only

    @field_validator("models")
    @classmethod
    def _models_have_providers(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        return checked_models(models)

    @model_validator(mode="after")
    def _base_urls_name_models(self) -> RunConfig:
        stray = sorted(set(self.base_urls) - set(self.models))
        if stray:
            raise ValueError(f"a base URL is given for {stray[0]}, which is not a model of the run")
        return self

    @model_validator(mode="after")
    def _steps_name_the_models(self) -> RunConfig:
        if self.steps:
            build_graph(self.steps)
            used = tuple(dict.fromkeys(m for step in self.steps for m in step.models))
            if used != self.models:
                raise ValueError("models must be the steps' models, in order of first use")
            if self.batch_models and self.finish_online_after is not None:
                raise ValueError(
                    "--finish-online-after is not built for a pipeline's batch steps: drop it "
                    "(an unfinished request of a step stays pending for resume)"
                )
        return self

    def online(self) -> RunConfig:
        """This run with every model going online (``@batch`` dropped, ``--batch`` off): a try
        answers in seconds where a batch job may take hours, and its answers, in the
        response cache, serve the batch run too (a batch request is the online one)."""
        return self.model_copy(
            update={
                "batch": False,
                "models": tuple(online_spec(m) for m in self.models),
                "base_urls": {online_spec(m): url for m, url in self.base_urls.items()},
                "steps": tuple(
                    step.model_copy(update={"models": tuple(map(online_spec, step.models))})
                    for step in self.steps
                ),
            }
        )

    def base_url_of(self, model: str) -> str | None:
        """The API root ``model``'s calls go to, if the run sets one (else its provider's)."""
        return self.base_urls.get(model) or self.base_url

    @field_serializer("base_url", when_used="json")
    def _base_url_without_credentials(self, url: str | None) -> str | None:
        """``config.json`` (and the fingerprint) never hold a key the URL carried."""
        return None if url is None else strip_url_credentials(url)

    @field_serializer("base_urls", when_used="json")
    def _base_urls_without_credentials(self, urls: dict[str, str]) -> dict[str, str]:
        return {model: strip_url_credentials(url) for model, url in urls.items()}

    def fingerprint(self) -> str:
        """sha256 over what decides an item's result; speed settings are left out.

        A run with no per-model URL and no steps hashes as it did before they existed, so
        runs started by an older batchdeck still resume."""
        fixed = self.model_dump(mode="json", exclude=_SPEED_FIELDS)
        for added in ("base_urls", "steps"):  # hashed only when set: older runs still resume
            if not fixed[added]:
                del fixed[added]
        return hashlib.sha256(orjson.dumps(fixed, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes, where: str) -> RunConfig:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise _config_error(exc, f"{where}: ") from None


Mode = Literal["batch", "online"]
MODE_SUFFIXES: Mapping[str, Mode] = {"@batch": "batch", "@online": "online"}
"""A model spec may end in one of these to choose how its calls go, whatever ``--batch`` says."""


def checked_models(models: Sequence[str]) -> tuple[str, ...]:
    """``models`` if there is one at least, each looks like ``provider:model`` and none is
    listed twice; else ``ValueError`` saying which."""
    if not models:
        raise ValueError("at least one model is needed")
    for spec in models:
        provider, sep, name = bare_model(spec).partition(":")
        if not sep or not provider or not name:
            raise ValueError(f"model {spec!r} must look like provider:model, e.g. {DEFAULT_MODEL}")
    if len(set(models)) != len(models):
        raise ValueError("a model is listed twice")
    return tuple(models)


SERVER_LABEL = " ["
"""Where a run's label of a model's server starts: ``llamacpp:smollm2 [127.0.0.1:8081]`` is
``llamacpp:smollm2`` on that server, apart from the same model on another one (no model
name an API knows holds a space)."""


def labelled(spec: str, where: str) -> str:
    """``spec`` named by ``where`` it runs (a host and port, an endpoint's name)."""
    return f"{spec}{SERVER_LABEL}{where}]"


def bare_model(spec: str) -> str:
    """``openai:gpt-4o-mini@batch`` -> ``openai:gpt-4o-mini``, ``llamacpp:smollm2
    [127.0.0.1:8081]`` -> ``llamacpp:smollm2``: the model prices and providers know (results
    keep the spec as given, so one run can compare both ways, or one model on two servers)."""
    spec = spec.partition(SERVER_LABEL)[0]
    for suffix in MODE_SUFFIXES:
        if spec.endswith(suffix):
            return spec[: -len(suffix)]
    return spec


def online_spec(spec: str) -> str:
    """``spec`` without a ``@batch`` suffix (its server's label kept): the model going online
    when the run does not say batch."""
    head, label, tail = spec.partition(SERVER_LABEL)
    return head.removesuffix("@batch") + label + tail


def provider_model(spec: str) -> str:
    """The provider's own name of ``spec``'s model (``gpt-4o-mini``)."""
    return bare_model(spec).partition(":")[2]


def model_mode(spec: str, *, batch: bool) -> Mode:
    """How ``spec``'s calls go: its suffix if it has one, else the run's ``--batch``."""
    spec = spec.partition(SERVER_LABEL)[0]
    for suffix, mode in MODE_SUFFIXES.items():
        if spec.endswith(suffix):
            return mode
    return "batch" if batch else "online"


Kind = Literal["int", "float", "bool", "choice"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One declared knob, as every front end sees it (see the module docstring)."""

    name: str
    path: tuple[str, ...]
    """Where it sits in ``RunConfig`` (``("retry", "base_s")``)."""
    about: Tunable
    default: Any
    kind: Kind
    choices: tuple[str, ...]
    """The allowed values of a ``choice``."""
    bounded: Any = field(repr=False, compare=False)
    """Its type with its bounds, as pydantic validates it."""
    owner: type[BaseModel] = field(repr=False, compare=False)
    """The model that declares it (its config, e.g. on NaN, applies to the value too)."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def text(self, value: Any) -> str:
        """``value`` as a user would type it (blank for None)."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return f"{value:g}" if isinstance(value, float) else str(value)

    @property
    def default_text(self) -> str:
        """What the default is, or what leaving it unset means."""
        return self.text(self.default) or self.about.unset

    def parse(self, raw: object, where: str = "") -> Any:
        """``raw`` (text from a flag, a variable or a form, or a TOML value) as this setting's
        value, bounds checked; a ``ConfigError`` naming ``where`` and the setting if not."""
        try:
            return _adapter(self.name).validate_python(raw)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise ConfigError(f"{where}{self.name}: {reason}", field=self.name) from None


def _group(info: FieldInfo) -> type[BaseModel] | None:
    """The model of a field that groups settings (``retry``, ``sim``)."""
    kind = info.annotation
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _walk(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[Setting]:
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if (group := _group(info)) is not None:
            yield from _walk(group, path)
            continue
        about = next((m for m in info.metadata if isinstance(m, Tunable)), None)
        if about is None:
            continue
        annotation: Any = info.annotation
        kind, choices = _kind(annotation)
        bounds = [m for m in info.metadata if not isinstance(m, Tunable)]
        bounded: Any = Annotated[(annotation, *bounds)] if bounds else annotation
        yield Setting(
            name=about.name or name,
            path=path,
            about=about,
            default=info.default,
            kind=kind,
            choices=choices,
            bounded=bounded,
            owner=model,
        )


def _kind(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = (arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Literal:
        return "choice", tuple(get_args(annotation))
    if annotation in (int, float, bool):
        return annotation.__name__, ()
    raise TypeError(f"a setting must be an int, a float, a bool or a Literal, not {annotation!r}")


@functools.cache
def _adapter(name: str) -> TypeAdapter[Any]:
    """Built on first use: building all of them would slow every command's start."""
    setting = SETTINGS_BY_NAME[name]
    return TypeAdapter(setting.bounded, config=setting.owner.model_config)


SETTINGS: tuple[Setting, ...] = tuple(_walk(RunConfig))
"""Every declared knob, in declaration order."""
SETTINGS_BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}
_BY_PATH: Mapping[tuple[str, ...], Setting] = {setting.path: setting for setting in SETTINGS}


def _speed_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """``model_dump``'s ``exclude`` for the settings that do not change results; a group
    whose every field is such a setting is left out whole."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        if (group := _group(info)) is not None:
            inner = _speed_fields(group, path)
            whole = len(inner) == len(group.model_fields)
            if inner:
                out[name] = True if whole and all(v is True for v in inner.values()) else inner
        elif (setting := _BY_PATH.get(path)) is not None and not setting.about.changes_results:
            out[name] = True
    return out


_SPEED_FIELDS = _speed_fields(RunConfig)

_SettingsDict = TypedDict(  # type: ignore[misc]
    "_SettingsDict", {s.name: s.bounded | None for s in SETTINGS}, total=False
)
SettingValues = Annotated[
    dict[str, Any],
    GetPydanticSchema(lambda _source, handler: handler(_SettingsDict)),
    AfterValidator(lambda values: {k: v for k, v in values.items() if v is not None}),
]
"""A pydantic field type: some settings by name, each checked against its declaration
(errors are located at the setting's name), unknown names and ``None`` dropped."""

SPEED_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if not s.about.changes_results)
"""What a resume may change."""


def config_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Settings by public name as ``RunConfig`` keywords (``retries`` -> ``retry.retries``)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"{name}: not a setting", field=name)
        *groups, leaf = setting.path
        target = out
        for group in groups:
            target = target.setdefault(group, {})
        target[leaf] = value
    return out


def settings_of(config: RunConfig) -> dict[str, Any]:
    """The config's value of every setting, by public name."""
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        value: Any = config
        for part in setting.path:
            value = getattr(value, part)
        out[setting.name] = value
    return out


def with_settings(config: RunConfig, values: Mapping[str, Any]) -> RunConfig:
    """``config`` with some settings (by public name) changed, validated again."""
    return make_config(**_merge(config.model_dump(), config_fields(values)))


def _merge(base: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _config_error(exc: ValidationError, where: str = "") -> ConfigError:
    """Pydantic's first error as one line, ``field: message``, naming the setting it is about."""
    err = exc.errors()[0]
    loc = tuple(str(part) for part in err["loc"])
    setting = next((s for s in SETTINGS if loc[: len(s.path)] == s.path), None)
    name = setting.name if setting is not None else ".".join(loc) or "config"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    field_name = setting.name if setting is not None else next(iter(loc), None)
    return ConfigError(f"{where}{name}: {err['msg']}{more}", field=field_name)


def make_config(**values: Any) -> RunConfig:
    """Build a RunConfig, turning validation errors into one-line ConfigErrors."""
    try:
        return RunConfig(**values)
    except ValidationError as exc:
        raise _config_error(exc) from None
