"""What the providers' native structured-output modes demand of a JSON Schema.

OpenAI's ``strict: true`` guarantees the output matches the schema, but only for
a subset: the root is an object, every object lists all its properties as
required and sets ``additionalProperties: false``, and a few keywords
(``allOf``, ``not``, ``if``/``then``/``else``, ``patternProperties`` …) are
refused. Rewriting a user's schema to fit would change what it means (an
optional field would become required), so ``strict_compatible`` only checks,
and a schema that does not fit is sent with ``strict: false`` (still JSON,
shaped by the schema, and the engine validates the result either way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_UNSUPPORTED_STRICT = frozenset(
    {
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
    }
)
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "prefixItems")
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def wire_name(name: str, *, max_length: int = 64) -> str:
    """``name`` reduced to what tool and schema names allow: ``[a-zA-Z0-9_-]{1,max}``."""
    return _NAME_CHARS.sub("_", name)[:max_length] or "result"


def is_object_schema(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "object"


def strict_compatible(schema: Mapping[str, Any]) -> bool:
    """True when OpenAI's strict mode accepts ``schema`` exactly as it is."""
    return is_object_schema(schema) and _strict_node(schema)


def _strict_node(node: Any) -> bool:
    if not isinstance(node, Mapping):
        return isinstance(node, bool)
    if _UNSUPPORTED_STRICT.intersection(node):
        return False
    properties = node.get("properties")
    if node.get("type") == "object" or properties is not None:
        if node.get("additionalProperties") is not False:
            return False
        if set(node.get("required", ())) != set(properties or {}):
            return False
    children: list[Any] = []
    for key in _SUBSCHEMA_MAPS:
        children.extend((node.get(key) or {}).values())
    for key in _SUBSCHEMA_LISTS:
        children.extend(node.get(key) or ())
    if "items" in node:
        children.append(node["items"])
    return all(_strict_node(child) for child in children)
