"""The run's prompt template: ``{field}`` is filled from the item, ``{{`` and ``}}`` are braces.

A template is parsed once into literal text and field names, so rendering is a
join (about a microsecond), and a malformed one is a ``ConfigError`` naming the
column before anything is sent. Only plain names: no format specs or
conversions, so a field called ``a:b`` is just that; spaces around a name are
ignored. A string value is inserted as it is, ``None`` as nothing, anything
else as compact JSON.

Which template an item gets:

- ``--prompt`` when given, else ``default_template_for`` the first valid item's
  fields: ``{context}``, else ``{text}``, else one ``name: {name}`` line per
  field but ``id`` and ``prompt``.
- An item with its own non-blank ``prompt`` uses that instead, parsed by the
  same rules; a prompt that names no field gets the item's ``context``, when it
  has one, after a blank line, so a plain instruction still sees its data.

``render_item`` applies both rules for one item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import orjson

from engine._errors import ConfigError

PROMPT: Final = "prompt"
CONTEXT: Final = "context"
TEXT: Final = "text"
_ID: Final = "id"

_TOKEN: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NOTHING: Final[frozenset[str]] = frozenset()
_CACHED_TEMPLATES: Final = 1024
"""Distinct per-item prompts kept parsed; items usually share a handful."""


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    text: str
    """The template as written."""
    _head: str = field(repr=False, compare=False)
    _parts: tuple[tuple[str, str], ...] = field(repr=False, compare=False)
    """(field name, literal text after it) for each placeholder, in order."""

    @classmethod
    def parse(cls, text: str) -> PromptTemplate:
        """Raises ``ConfigError`` naming the place of an unbalanced brace or an empty ``{}``."""
        return _parse(text)

    @property
    def fixed_prefix(self) -> str:
        """The text before the first placeholder: the same in every item's prompt."""
        return self._head

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(name for name, _ in self._parts)

    @property
    def names(self) -> tuple[str, ...]:
        """The placeholders in order of first use."""
        return tuple(dict.fromkeys(name for name, _ in self._parts))

    def missing(self, fields: Mapping[str, Any]) -> frozenset[str]:
        """Placeholders ``fields`` has no key for (a key holding ``None`` is not missing)."""
        for name, _ in self._parts:
            if name not in fields:
                return frozenset(name for name, _ in self._parts if name not in fields)
        return _NOTHING

    def render(self, fields: Mapping[str, Any]) -> str:
        """The filled-in text; ``KeyError`` for a missing field (see ``missing``)."""
        out = [self._head]
        for name, tail in self._parts:
            value = fields[name]
            out.append(value if type(value) is str else _as_text(value))
            out.append(tail)
        return "".join(out)


def unknown_placeholders(template: PromptTemplate, field_names: Iterable[str]) -> list[str]:
    """The template's placeholders that are not among ``field_names``, in order of use.

    The run refuses to start when the first valid item leaves any unfilled.
    """
    known = set(field_names)
    return [name for name in template.names if name not in known]


def default_template_for(field_names: Iterable[str]) -> str:
    """The template for a run without ``--prompt``, from the first valid item's field names."""
    names = [name for name in field_names if name not in (_ID, PROMPT)]
    if CONTEXT in names:
        return "{" + CONTEXT + "}"
    if TEXT in names:
        return "{" + TEXT + "}"
    usable = [name for name in names if name.strip() == name and not set(name) & {"{", "}"}]
    if usable:
        return "\n".join(f"{name}: {{{name}}}" for name in usable)
    return "{" + _ID + "}"


def render_item(
    template: PromptTemplate, fields: Mapping[str, Any], *, edited: bool = False
) -> str:
    """The prompt sent for one item: its own ``prompt`` if it has one, else ``template``;
    an ``edited`` template (a prompt the user edited for a retry) wins over the item's own.

    Raises ``ValueError`` whose message is the item's one-line ``invalid_input``
    reason: a malformed prompt of its own, or fields the template needs and the
    item lacks.
    """
    if edited and PROMPT in fields:
        fields = {name: value for name, value in fields.items() if name != PROMPT}
    own = fields.get(PROMPT)
    if type(own) is str and own and not own.isspace():
        try:
            template = _parse_item_prompt(own, CONTEXT in fields)
        except ConfigError as exc:
            raise ValueError(f"the item's own {exc}") from None
    missing = template.missing(fields)
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ValueError(f"no field{plural} {', '.join(sorted(missing))} for the prompt template")
    return template.render(fields)


@lru_cache(maxsize=_CACHED_TEMPLATES)
def _parse_item_prompt(prompt: str, has_context: bool) -> PromptTemplate:
    template = _parse(prompt)
    if template.placeholders or not has_context:
        return template
    return _parse(_escape(prompt) + "\n\n{" + CONTEXT + "}")


@lru_cache(maxsize=_CACHED_TEMPLATES)
def _parse(text: str) -> PromptTemplate:
    literals: list[str] = []
    names: list[str] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        token = match[0]
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token in ("{", "}"):
            problem = "is never closed" if token == "{" else "has no matching {"
            raise ConfigError(
                f"prompt template: {token} at {_where(text, match.start())} {problem} "
                f"(write {token * 2} for a literal brace)"
            )
        elif not match[1].strip():
            raise ConfigError(f"prompt template: empty {{}} at {_where(text, match.start())}")
        else:
            literals.append("".join(literal))
            literal.clear()
            names.append(match[1].strip())
    literal.append(text[pos:])
    literals.append("".join(literal))
    return PromptTemplate(text, literals[0], tuple(zip(names, literals[1:], strict=True)))


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}" if "\n" in text else f"column {column}"


def _escape(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return orjson.dumps(value).decode()
