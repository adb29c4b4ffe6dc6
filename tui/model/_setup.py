"""The Setup form as plain data: its fields, what they start as, and what the texts describe.

The screen only draws and forwards: it hands ``read_form`` the texts the user
typed and marks whatever ``FormProblem`` comes back by its ``field``. Nothing
here imports Textual, so the form is tested without an app.

The fields are not listed here: there is one for each declared setting
(``engine.SETTINGS``, with its label and its default as the placeholder), plus
the schema. What a field starts as follows the engine's precedence with the
app's remembered values in the config file's place: a ``BATCHDECK_*``
variable, else the value the last run started with (``settings.json``), else
blank, which means the engine's default. A value the form cannot type-check is
named by its label; one the model refuses is named by the field the engine's
``ConfigError`` gives (``ConfigError.field``), never by reading its text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from engine import (
    DEFAULT_MODEL,
    SETTINGS,
    ConfigError,
    Estimate,
    Mode,
    Price,
    PriceTable,
    RunConfig,
    Setting,
    bare_model,
    config_fields,
    env_settings,
    load_schema,
    make_config,
    model_mode,
)
from engine.keys import KeyStatus
from engine.providers import PRESETS, base_url_for, is_local
from tui import _format
from tui.model._steps import StepDraft, step_lines, step_specs, total_of, with_first

Kind = Literal["int", "float", "bool", "choice", "text"]

SCHEMA_FIELD: Final = "schema_ref"
PATH_FIELD: Final = "path"
MODELS_FIELD: Final = "models"
STEPS_FIELD: Final = "steps"


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    """A setting's name, or ``schema_ref``."""
    label: str
    kind: Kind
    placeholder: str
    """What a blank means."""


def _field(setting: Setting) -> FormField:
    placeholder = setting.default_text or "none"
    return FormField(setting.name, setting.about.label, setting.kind, placeholder)


FORM_FIELDS: Final[tuple[FormField, ...]] = (
    *(_field(setting) for setting in SETTINGS),
    FormField(SCHEMA_FIELD, "Schema", "text", "none"),
)


def initial_texts(saved: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
    """Each field's starting text (``BATCHDECK_*`` over ``saved``), and a warning when the
    environment's values could not be used."""
    try:
        env = env_settings()
        warning = None
    except ConfigError as exc:
        env, warning = {}, f"Ignored the BATCHDECK_* settings: {exc}"
    values = {**saved, **env}
    return {s.name: s.text(values.get(s.name)) for s in SETTINGS}, warning


def parse_value(text: str, kind: Kind) -> Any:
    """The field's value, None when blank; ``ValueError`` with a short reason."""
    text = text.strip()
    if not text:
        return None
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("a whole number, please") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("a number, please") from None
    return text


@dataclass(frozen=True, slots=True)
class Form:
    """What the user typed and picked."""

    path: str
    models: Sequence[str]
    prompt: str
    system: str
    texts: Mapping[str, str]
    """Each ``FORM_FIELDS`` entry's text by name; a missing one counts as blank."""
    format: str | None = None
    """The input's format as chosen (``jsonl``, ``csv``, ...), or None: from its name."""
    base_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """A model's own base URL (models added by hand), for the models picked among them."""
    steps: Sequence[StepDraft] = ()
    """Step 1's name (and what a pipeline file gave it), then the later steps: a pipeline
    when there are more, or step 1 came from a file (as ``--pipeline`` runs a file of one
    step). Step 1's prompt, system prompt, schema and models are the form's own."""


@dataclass(frozen=True, slots=True)
class FormProblem:
    field: str | None
    """A ``FORM_FIELDS`` name, ``PATH_FIELD``, ``MODELS_FIELD``, ``STEPS_FIELD``, or None
    if no one field."""
    message: str


def read_form(form: Form, *, quiet: bool = False) -> RunConfig | list[FormProblem]:
    """The run the form describes, or what is wrong with it, field by field. ``quiet`` leaves
    out what is only missing (a form being filled in is not wrong yet)."""
    values: dict[str, Any] = {}
    for field in FORM_FIELDS:
        try:
            values[field.name] = parse_value(form.texts.get(field.name, ""), field.kind)
        except ValueError as exc:
            return [FormProblem(field.name, f"{field.label}: {exc}")]
    path = form.path.strip()
    if not path or not form.models:
        missing = []
        if not form.models:
            missing.append(FormProblem(MODELS_FIELD, "" if quiet else "Pick at least one model."))
        if not path:
            missing.append(FormProblem(PATH_FIELD, "" if quiet else "Pick an input file."))
        return missing
    schema_ref = values.pop(SCHEMA_FIELD)
    settings = {name: value for name, value in values.items() if value is not None}
    schema: dict[str, Any] = {}
    if schema_ref:
        try:
            schema = {"schema_ref": schema_ref, "output_schema": load_schema(schema_ref)}
        except ConfigError as exc:
            return [FormProblem(SCHEMA_FIELD, str(exc))]
    run: dict[str, Any] = {
        "prompt": form.prompt if form.prompt.strip() else None,
        "system": form.system if form.system.strip() else None,
        "models": tuple(form.models),
        **schema,
    }
    if len(form.steps) > 1 or (form.steps and form.steps[0].carried is not None):
        first = {"models": run["models"], "prompt": form.prompt, "system": form.system}
        try:
            steps = step_specs(with_first(form.steps, **first, schema_ref=schema_ref or ""))
        except ConfigError as exc:
            return [FormProblem(STEPS_FIELD, str(exc))]
        models = tuple(dict.fromkeys(model for step in steps for model in step.models))
        run = {"steps": steps, "models": models}  # as the CLI's --pipeline gives them
    try:
        return make_config(
            input=path,
            format=form.format,
            base_urls={m: url for m, url in form.base_urls.items() if url and m in run["models"]},
            **run,
            **config_fields(settings),
        )
    except ConfigError as exc:
        return [FormProblem(exc.field, str(exc))]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    spec: str
    price: str
    key: str
    """Where the provider's key was found (masked), or that there is none."""
    has_key: bool
    per_million: float | None = None
    """Input plus output price per million tokens: what "cheapest" compares."""
    source: str = ""
    """Where the price comes from and how recent it is."""
    batch_price: str = ""
    """What the same calls cost through the provider's batch API ("" when unknown)."""


def model_choices(prices: PriceTable, keys: Sequence[KeyStatus]) -> list[ModelChoice]:
    """simulate first, then the models the price data lists for each provider that has a key
    (current models first), with key and price. Reads the price data: call it in a thread."""
    listed = [
        (status, spec)
        for status in keys
        if status.present and PRESETS[status.provider].pricing == "table"
        for spec in prices.models_of(status.provider)
    ]
    choices = [_choice(prices, DEFAULT_MODEL, "offline, no key needed")]
    for status, spec in listed:
        choices.append(_choice(prices, spec, f"key: {status.source} {status.masked}"))
    return choices


def _choice(prices: PriceTable, spec: str, key: str) -> ModelChoice:
    price = prices.lookup(spec)
    own = prices.lookup_user(spec) is not None
    return ModelChoice(
        spec,
        _price_text(price),
        key,
        True,
        None if price is None else price.input + price.output,
        f"prices: {prices.user_file}" if own else f"prices: {prices.as_of}",
        _batch_text(price),
    )


def added_choices(
    added: Mapping[str, str], prices: PriceTable, keys: Sequence[KeyStatus]
) -> list[ModelChoice]:
    """The models added by hand (``provider:model`` -> base URL, "" for the provider's
    own), with where they run, their price and whether they can be called."""
    by_provider = {status.provider: status for status in keys}
    choices = []
    for spec, url in added.items():
        provider = spec.partition(":")[0]
        preset = PRESETS.get(provider)
        where = url or base_url_for(provider) or "no base URL"
        local = is_local(provider, url or None)
        price = None if preset is None or preset.pricing == "free" else prices.lookup(spec)
        shown = "free (local)" if local and price is None else _price_text(price)
        status = by_provider.get(provider)
        if status is not None and status.present:
            key, has_key = f"at {where}, key: {status.source} {status.masked}", True
        elif local or (preset is not None and not preset.key_required):
            key, has_key = f"at {where}, no key needed", True
        else:
            key, has_key = f"at {where}, no key", False
        per_million = None if price is None else price.input + price.output
        choices.append(
            ModelChoice(spec, shown, key, has_key, per_million, batch_price=_batch_text(price))
        )
    return choices


def _price_text(price: Price | None) -> str:
    return "price unknown" if price is None else price.describe()


def _batch_text(price: Price | None) -> str:
    return "" if price is None else price.batch().describe()


def split_modes(specs: Sequence[str]) -> tuple[tuple[str, ...], dict[str, Mode]]:
    """Model specs as a run names them (``openai:gpt-4o-mini@batch``) -> the models, and the
    mode each one chose by its suffix."""
    models = tuple(bare_model(spec) for spec in specs)
    modes = {
        bare: model_mode(spec, batch=True)
        for spec, bare in zip(specs, models, strict=True)
        if spec != bare
    }
    return models, modes


def with_modes(models: Sequence[str], modes: Mapping[str, Mode]) -> tuple[str, ...]:
    """The specs a run gets: each model with the mode chosen for it as its suffix (none:
    the run's ``batch`` setting decides)."""
    return tuple(f"{m}@{modes[m]}" if m in modes else m for m in models)


def mode_text(choice: ModelChoice, mode: Mode) -> str:
    """The model, the way its calls go, and its prices both ways, the chosen one marked:
    what the form's detail shows."""
    if not choice.batch_price:
        return f"{choice.spec}: goes {mode} (b switches)\n{choice.price}"
    return (
        f"{choice.spec}: goes {mode} (b switches)\n"
        f"{'▸' if mode == 'online' else ' '} online {choice.price}\n"
        f"{'▸' if mode == 'batch' else ' '} batch  {choice.batch_price}"
    )


def default_models(saved: Sequence[str], choices: Sequence[ModelChoice]) -> tuple[str, ...]:
    """The saved models still offered; else the cheapest priced model with a key; else simulate."""
    offered = {choice.spec for choice in choices}
    kept = tuple(spec for spec in saved if spec in offered)
    if kept:
        return kept
    keyed = [
        (c.per_million, c.spec)
        for c in choices
        if c.has_key and c.spec != DEFAULT_MODEL and c.per_million is not None
    ]
    return (min(keyed)[1],) if keyed else (DEFAULT_MODEL,)


def estimate_text(found: Estimate, config: RunConfig) -> str:
    """The pre-flight estimate as the form shows it: the cost as each model goes (online or
    batch), then the likely cost all online and all batch, to choose by."""
    low, high = found.cost_low, found.cost_high
    cost = (
        "cost unknown"
        if low is None or high is None
        else f"{_format.money(low)} – {_format.money(high)}"
    )
    cap = "" if config.max_cost is None else f" (cap {_format.money(config.max_cost)})"
    invalid = f", {found.invalid:,} invalid" if found.invalid else ""
    cached = f" ({found.cached:,} from the cache, free)" if found.cached else ""
    online = total_of(m.other_likely if m.batch else m.cost_likely for m in found.models)
    batch = total_of(m.cost_likely if m.batch else m.other_likely for m in found.models)
    both = (
        ""
        if online is None or batch is None
        else f"likely all online {_format.money(online)} · all batch {_format.money(batch)}\n"
    )
    if all(m.batch for m in found.models):
        pace = "batch jobs: results within 24 h, usually far sooner"
    else:
        pace = (
            f"~{_format.duration(found.seconds)} at {config.workers} workers "
            f"(bound by {found.bound_by}, {_format.latency(found.latency_s * 1000)} a call)"
        )
    calibrated = (
        f"\ncalibrated from {found.calibrated_items:,} sampled items (the try's tokens)"
        if found.calibrated_items
        else ""
    )
    return (
        f"{found.items:,} items{invalid} · {found.calls:,} calls{cached}\n"
        f"~{_format.count(found.input_tokens)} input tokens, "
        f"≤{_format.count(found.output_tokens_max)} output\n"
        f"{cost}{cap}\n{step_lines(found)}{both}{pace}{calibrated}"
    )
