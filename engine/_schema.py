"""Structured output: load the user's schema, validate a model's answer against it.

``--schema`` takes a JSON Schema file or ``module:PydanticModel``; either way
the run keeps only the JSON Schema (pydantic models are turned into theirs), so
one validator serves both and a resume needs neither the file nor the module.
jsonschema is imported when a schema is: it costs ~0.2 s at every start of a
command that has none.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from engine._errors import ConfigError
from engine._secrets import redact, scrub_value


def load_schema(ref: str) -> dict[str, Any]:
    """Resolve ``path.json`` or ``module:Model`` to a JSON Schema; ConfigError says why not."""
    path = Path(ref)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"--schema {ref}: no such file")
        try:
            schema = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"--schema {ref}: not valid JSON ({exc})") from None
    else:
        schema = _pydantic_schema(ref)
    if not isinstance(schema, dict):
        raise ConfigError(f"--schema {ref}: a JSON Schema must be an object")
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"--schema {ref}: not a valid JSON Schema: {exc.message}") from None
    return schema


def _pydantic_schema(ref: str) -> dict[str, Any]:
    module_name, sep, attr = ref.partition(":")
    if not sep or not attr:
        raise ConfigError(f"--schema {ref}: give a .json file or module:PydanticModel")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        model = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--schema {ref}: cannot import ({exc})") from None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"--schema {ref}: {attr} is not a pydantic model")
    return model.model_json_schema()


class OutputValidator:
    """Parses a model's text as JSON and checks it against the run's schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        import jsonschema

        self._validator = jsonschema.validators.validator_for(schema)(schema)
        self._best_match = jsonschema.exceptions.best_match

    def parse(self, text: str, provided: Any = None) -> Any:
        """The validated object; ValueError with a one-line reason if it does not conform.

        Online answers and batch results both come through here, so keys are kept out
        here: an object decoded from ``text`` is scrubbed, since decoding may spell out a
        key the text only held escaped (``\\u0073k-...``), and so is the reason, which
        quotes the value. A ``provided`` object (the provider's own parse) was scrubbed
        as it arrived (``HttpProvider.answer``)."""
        decoded = provided is None
        if decoded:
            try:
                value = orjson.loads(_strip_fence(text))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"output is not JSON: {exc}") from None
        else:
            value = provided
        error = self._best_match(self._validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            reason = f"output does not match the schema at {where}: {error.message}"
            raise ValueError(redact(reason))
        return scrub_value(value) if decoded else value


def _strip_fence(text: str) -> str:
    """Models sometimes wrap JSON in a markdown fence even in JSON mode."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped


def example_instance(
    schema: Mapping[str, Any], pick: int = 0, root: Mapping[str, Any] | None = None
) -> Any:
    """A small value that conforms to ``schema``; ``pick`` varies enum choices deterministically."""
    root = schema if root is None else root
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        return example_instance(target, pick, root)
    if "enum" in schema:
        choices = list(schema["enum"])
        return choices[pick % len(choices)]
    if "const" in schema:
        return schema["const"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return example_instance(schema[combinator][0], pick, root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        required = schema.get("required", list(props))
        return {
            name: example_instance(props.get(name, {}), pick + i, root)
            for i, name in enumerate(required)
        }
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [example_instance(schema.get("items", {}), pick + i, root) for i in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return pick % 2 == 0
    if kind == "null":
        return None
    return "simulated"
