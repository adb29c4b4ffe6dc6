"""The run's settings: one validated, frozen pydantic model shared by the CLI, the TUI and the log.

A run dir keeps its config as ``config.json``; resuming reads it back, so what
ran before is what runs again. Keys never appear here: providers resolve them
from the environment when a run starts. The fingerprint covers what changes
results (prompt, models, schema, limits on output), not what only changes speed
(workers, rate limits, durability), so those can be changed on resume.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine._errors import ConfigError

Format = Literal["jsonl", "csv", "txt", "json"]
Durability = Literal["fsync", "flush"]

DEFAULT_MODEL = "simulate:gpt-4o-mini"


class SimSettings(BaseModel):
    """How the offline ``simulate`` provider behaves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(400.0, ge=0)
    failure_rate: float = Field(0.0, ge=0, le=1)
    seed: int = 0


class RetrySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retries: int = Field(3, ge=0, le=100)
    """Attempts after the first one."""
    base_s: float = Field(0.5, ge=0)
    cap_s: float = Field(60.0, ge=0)


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input: str
    format: Format | None = None
    prompt: str | None = None
    """The run's template; None uses each item's ``prompt`` or the default for its fields."""
    system: str | None = None
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    workers: int = Field(8, ge=1, le=4096)
    max_cost: float | None = Field(None, ge=0)
    max_item_cost: float | None = Field(None, ge=0)
    time_limit: float | None = Field(None, gt=0)
    max_items: int | None = Field(None, ge=0)
    retry: RetrySettings = RetrySettings()
    timeout: float = Field(60.0, gt=0)
    max_tokens: int = Field(512, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    stop: tuple[str, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    schema_ref: str | None = None
    """``path/to/schema.json`` or ``module:PydanticModel``, as the user gave it."""
    output_schema: dict[str, Any] | None = None
    """The resolved JSON Schema (kept so a resume needs neither the file nor the module)."""
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    burst: float = Field(1.0, gt=0, le=60)
    """Seconds of refill a rate-limit bucket holds: how far calls may run ahead of the pace."""
    base_url: str | None = None
    durability: Durability = "fsync"
    sim: SimSettings = SimSettings()

    @field_validator("models")
    @classmethod
    def _models_have_providers(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        if not models:
            raise ValueError("at least one model is needed")
        for spec in models:
            provider, sep, name = spec.partition(":")
            if not sep or not provider or not name:
                raise ValueError(
                    f"model {spec!r} must look like provider:model, e.g. {DEFAULT_MODEL}"
                )
        if len(set(models)) != len(models):
            raise ValueError("a model is listed twice")
        return models

    def fingerprint(self) -> str:
        """sha256 over what decides an item's result; speed settings are left out."""
        fixed = self.model_dump(
            mode="json",
            exclude={
                "workers",
                "rpm",
                "tpm",
                "burst",
                "durability",
                "time_limit",
                "max_items",
                "max_cost",
                "max_item_cost",
                "retry",
            },
        )
        return hashlib.sha256(orjson.dumps(fixed, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes, where: str) -> RunConfig:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {one_line(exc)}") from None


def one_line(exc: ValidationError) -> str:
    """Pydantic's first error as ``field: message``, for a one-line user error."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def make_config(**values: Any) -> RunConfig:
    """Build a RunConfig, turning validation errors into one-line ConfigErrors."""
    try:
        return RunConfig(**values)
    except ValidationError as exc:
        raise ConfigError(one_line(exc)) from None
