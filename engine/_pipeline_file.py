"""Reading a pipeline file (``--pipeline run.toml``): one ``[[step]]`` table per step.

::

    [[step]]
    name = "extract"
    models = ["openai:gpt-4o-mini"]          # or model = "..."
    prompt = "List the entities in: {context}"
    schema = "schemas/entities.json"         # a file next to this one, or module:Model
    max_tokens = 256

    [[step]]
    name = "classify"
    models = ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]
    prompt = "Classify {context} given its entities {extract.parsed.entities}"
    kind = "debate"                          # then each revises seeing the other's answer
    revise_prompt = "..."                    # optional: {task}, {own_answer}, {other_answers}

A step of ``kind = "debate"`` is two steps (``engine._steps.debate_steps``): itself,
then ``<name>-revised``, where each model revises its answer once; the step after it
reads the revised answers as ``{answers}``.

TOML is read with the standard library and every table checked with pydantic;
then the steps are checked as a graph (``engine._steps``). Whatever is wrong is
one line naming the file and the line of the key (or the table) it is about:
tomllib reports no positions for values, so the line is found in the text by the
table's order and the key's name.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine._config import checked_models
from engine._errors import ConfigError
from engine._schema import load_schema
from engine._steps import StepError, StepSpec, build_graph, debate_steps

_TABLE = re.compile(r"\s*\[\[\s*step\s*\]\]")
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


class _FileStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    models: tuple[str, ...] = ()
    model: str | None = None
    prompt: str | None = None
    system: str | None = None
    schema_: str | dict[str, Any] | None = Field(default=None, alias="schema")
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    params: dict[str, Any] = Field(default_factory=dict)
    kind: Literal["plain", "judge", "debate"] = "plain"
    revise_prompt: str | None = None

    @model_validator(mode="after")
    def _one_way_to_name_models(self) -> _FileStep:
        if self.model is not None and self.models:
            raise ValueError("give model or models, not both")
        if self.model is None and not self.models:
            raise ValueError('a step needs model = "provider:model" or models = [...]')
        return self

    @field_validator("revise_prompt")
    @classmethod
    def _revise_prompt_in_a_debate(cls, text: str | None, info: ValidationInfo) -> str | None:
        if text is not None and info.data.get("kind") != "debate":
            raise ValueError('revise_prompt is for a step of kind = "debate"')
        return text

    @field_validator("models")
    @classmethod
    def _checked_models(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        return checked_models(models) if models else models

    @field_validator("model")
    @classmethod
    def _checked_model(cls, model: str | None) -> str | None:
        return model if model is None else checked_models((model,))[0]


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    step: list[_FileStep] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class _Lines:
    """Where each step table and each of its keys is in the file's text."""

    text: str
    path: Path

    def of(self, index: int | None, key: str | None) -> int | None:
        lines = self.text.splitlines()
        starts = [n for n, line in enumerate(lines) if _TABLE.match(line)]
        if index is None or index >= len(starts):
            return None
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        if key is not None:
            pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
            for n in range(starts[index] + 1, end):
                if pattern.match(lines[n]):
                    return n + 1
        return starts[index] + 1

    def error(self, message: str, index: int | None = None, key: str | None = None) -> ConfigError:
        line = self.of(index, key)
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        return ConfigError(f"{where}: {message}")


def load_pipeline(path: str | Path) -> tuple[StepSpec, ...]:
    """The steps of a pipeline file, checked; ``ConfigError`` naming the line if not."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--pipeline {path}: {exc.strerror}") from None
    try:
        text = raw.decode()
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_AT.search(str(exc))
        if where is None:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        reason = str(exc)[: where.start()].rstrip()
        raise ConfigError(
            f"{path}, line {where[1]}: not valid TOML: {reason} (column {where[2]})"
        ) from None
    lines = _Lines(text, path)
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        raise _located(exc, lines) from None
    specs: list[StepSpec] = []
    tables: list[int] = []
    """The table each spec comes from (a debate's two steps, from one)."""
    for index, step in enumerate(parsed.step):
        schema = step.schema_
        if isinstance(schema, str):
            is_path = schema.endswith(".json") or ":" not in schema  # else module:Model
            ref = str(path.parent / schema) if is_path else schema
            try:
                schema = load_schema(ref)
            except ConfigError as exc:
                raise lines.error(str(exc).replace("--schema", "schema"), index, "schema") from None
        try:
            spec = StepSpec(
                name=step.name,
                models=step.models or (step.model,),
                prompt=step.prompt,
                system=step.system,
                output_schema=schema,
                max_tokens=step.max_tokens,
                temperature=step.temperature,
                params=step.params,
                kind="plain" if step.kind == "debate" else step.kind,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            key = str(err["loc"][0]) if err["loc"] else None
            raise lines.error(f"step {step.name}: {_message(err)}", index, key) from None
        made = debate_steps(spec, step.revise_prompt) if step.kind == "debate" else (spec,)
        specs += made
        tables += [index] * len(made)
    try:
        build_graph(specs)
    except StepError as exc:
        table = tables[exc.index]
        key = exc.key
        if specs[exc.index].kind == "revise":  # it has no table: the debate's names it
            key = "revise_prompt" if key == "prompt" else "kind"
        raise lines.error(str(exc), table, key) from None
    return tuple(specs)


def _message(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ")


def _located(exc: ValidationError, lines: _Lines) -> ConfigError:
    err = exc.errors()[0]
    loc = err["loc"]
    if tuple(loc) == ("step",):  # missing, empty, or not a list of tables
        return lines.error("it needs [[step]] tables, one for each step")
    if not loc or loc[0] != "step":
        what = ".".join(str(part) for part in loc) or "the file"
        hint = " (the file holds [[step]] tables)" if loc else ""
        return lines.error(f"{what}: {_message(err)}{hint}")
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    key = str(loc[2]) if len(loc) > 2 else None
    name = f"step {index + 1}" if index is not None else "step"
    return lines.error(f"{name}: {f'{key}: ' if key else ''}{_message(err)}", index, key)
