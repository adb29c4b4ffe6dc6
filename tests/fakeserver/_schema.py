"""A minimal valid instance of a JSON Schema, and a deliberately invalid one.

Structured-output tests need the fake server to answer with JSON that a real
validator accepts, for schemas written by hand, exported by pydantic (``$defs``
and ``$ref``) or in Gemini's OpenAPI dialect (``"type": "OBJECT"``,
``nullable``). The instance is the smallest one that validates: required
properties only, the first enum value, the lower bound of a range. ``pattern``
and ``multipleOf`` are not solved. Instances are cached by the schema's
canonical bytes, because a batch sends the same schema thousands of times.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import orjson

_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_PLACEHOLDER = "x"
_SCHEMA_CACHE_SIZE = 256


def instance_of(schema: Any) -> Any:
    """The smallest value valid against ``schema`` (shared: never mutate it)."""
    return orjson.loads(_instance_bytes(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)))


def invalid_instance_of(schema: Any) -> Any:
    """A JSON value that ``schema`` rejects: a required property dropped, else the wrong type."""
    root = _Resolver(schema).effective(schema)
    value = instance_of(schema)
    required = root.get("required") if isinstance(root, dict) else None
    if isinstance(value, dict) and required:
        del value[required[0]]
        return value
    return {"unexpected": True} if isinstance(value, list) else [value]


@lru_cache(maxsize=_SCHEMA_CACHE_SIZE)
def _instance_bytes(canonical: bytes) -> bytes:
    schema = orjson.loads(canonical)
    return orjson.dumps(_Resolver(schema).instance(schema))


class _Resolver:
    def __init__(self, root: Any) -> None:
        self.root = root

    def resolve(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self._pointer(schema["$ref"])
        return schema

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if part:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def effective(self, schema: Any) -> Any:
        """The schema with ``$ref`` followed and ``allOf`` merged."""
        schema = self.resolve(schema)
        if isinstance(schema, dict) and schema.get("allOf"):
            return self._merge(
                [{k: v for k, v in schema.items() if k != "allOf"}, *schema["allOf"]]
            )
        return schema

    def instance(self, schema: Any) -> Any:
        schema = self.effective(schema)
        if not isinstance(schema, dict):
            return None  # `true` / `{}`-like schemas accept anything, null included
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for combinator in ("anyOf", "oneOf"):
            if schema.get(combinator):
                options = [self.resolve(option) for option in schema[combinator]]
                non_null = [o for o in options if not _is_null(o)]
                return self.instance((non_null or options)[0])
        kind = _type_of(schema)
        if kind == "object":
            properties = schema.get("properties", {})
            return {
                name: self.instance(properties.get(name, {})) for name in schema.get("required", [])
            }
        if kind == "array":
            items = schema.get("prefixItems") or [schema.get("items", {})]
            count = schema.get("minItems", 0)
            return [self.instance(items[min(i, len(items) - 1)]) for i in range(count)]
        if kind == "string":
            return _string(schema)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return False
        return None

    def _merge(self, parts: list[Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part in map(self.resolve, parts):
            for key, value in part.items():
                if key == "properties":
                    merged["properties"].update(value)
                elif key == "required":
                    merged["required"] += value
                else:
                    merged.setdefault(key, value)
        return merged


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and _type_of(schema) == "null"


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind is not None:
        return str(kind).lower()  # Gemini's OpenAPI subset spells types "OBJECT", "STRING"
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _string(schema: dict[str, Any]) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    length = max(int(schema.get("minLength", 1)), 1)
    if "maxLength" in schema:
        length = min(length, int(schema["maxLength"]))
    return _PLACEHOLDER * length


def _number(schema: dict[str, Any], *, integer: bool) -> float:
    """The lower bound (just above it if exclusive), else 0 if in range, else the upper bound."""
    low, high = (
        _bound(schema, "minimum", "exclusiveMinimum"),
        _bound(schema, "maximum", "exclusiveMaximum"),
    )
    if low is not None:
        value, exclusive = low
        if exclusive:
            value = math.floor(value) + 1 if integer else _between(value, high)
        return math.ceil(value) if integer else value
    if high is not None and (high[0] < 0 or (high[1] and high[0] <= 0)):
        value, exclusive = high
        if exclusive:
            return math.ceil(value) - 1 if integer else value - 1
        return math.floor(value) if integer else value
    return 0


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float, bool] | None:
    """(bound, is_exclusive), reading draft 4's boolean ``exclusiveMinimum`` too."""
    flag = schema.get(exclusive)
    if isinstance(flag, bool):
        return None if inclusive not in schema else (float(schema[inclusive]), flag)
    if flag is not None:
        return float(flag), True
    return None if inclusive not in schema else (float(schema[inclusive]), False)


def _between(low: float, high: tuple[float, bool] | None) -> float:
    """A number just above an exclusive lower bound, below any upper bound."""
    return low + 1 if high is None or low + 1 < high[0] else (low + high[0]) / 2
