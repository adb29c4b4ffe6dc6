"""API keys as values that refuse to be printed, and the redaction of anything that leaks anyway.

A key crosses many places that print: reprs in tracebacks, f-strings in error
messages, log records from httpx, error bodies a server echoes back. So the
key is never a ``str``: ``Secret`` masks itself in ``str``, ``repr`` and
``format`` and hands the value out only through ``reveal()``, which the code
that builds an auth header calls and nothing else does.

Masking prevents the leaks we write; ``redact`` catches the ones we do not:
it replaces every key batchdeck has held in this process (each ``Secret``
registers its value, if longer than 3 characters), key-shaped strings (``sk-…``,
``sk-ant-…``, ``AIza…``, ``gsk_…``) and the value of any ``authorization`` /
``x-api-key`` / ``x-goog-api-key`` / ``api_key`` / ``key=`` field.
``RedactingFilter`` applies it to log records; providers apply it to every
message they build from a response.

A server can also echo a key inside a good answer. Answers are written to the
log and the outputs at ten thousand a second, so they get ``scrub``: one ``in``
per registered key (nothing at all when none is registered), the regex only on
a hit.

A base URL can carry credentials too (``https://user:pass@host``,
``?api_key=…``): ``url_credentials`` finds them so the provider registers them
as secrets, and ``strip_url_credentials`` is the URL as it may be stored or shown.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

_MIN_REGISTERED_LEN = 4
"""Shorter values are not registered: redacting every ``"a"`` would garble everything."""

_KNOWN_PREFIXES = ("sk-ant-", "sk-proj-", "sk-or-v1-", "sk-", "gsk_", "AIza")

_KEY_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|sk-[A-Za-z0-9_\-]{16,}"
    r"|AIza[0-9A-Za-z_\-]{30,}"
    r"|gsk_[A-Za-z0-9]{20,}"
)

_FIELDS = re.compile(
    r"(?P<name>authorization|proxy-authorization|x-api-key|x-goog-api-key|api[_-]?key|[?&]key)"
    r"(?P<sep>['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<scheme>(?:bearer|basic)\s+)?"
    r"(?P<value>\[redacted\]|[^\s'\",;&)}\]]+)",
    re.IGNORECASE,
)

_CREDENTIAL_PARAM = re.compile(
    r"key|token|secret|passw|pwd|auth|sig|code|credential|session", re.IGNORECASE
)
"""Query parameter names whose values are credentials (``api_key``, ``access_token``, ``sig``)."""

_registered: tuple[str, ...] = ()
"""Replaced whole, never mutated: a thread iterating it never sees it change."""
_registered_pattern: re.Pattern[str] = re.compile(r"(?!)")


def _register(value: str) -> None:
    global _registered, _registered_pattern
    if len(value) >= _MIN_REGISTERED_LEN and value not in _registered:
        alternatives = sorted({*_registered, value}, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(map(re.escape, alternatives)))
        _registered = tuple(alternatives)


def mask(value: str) -> str:
    """``sk-…abcd``: the key's public prefix and last four characters, nothing else."""
    prefix = next((p for p in _KNOWN_PREFIXES if value.startswith(p)), "")
    rest = value[len(prefix) :]
    tail = rest[-4:] if len(rest) >= 16 else ""
    return f"{prefix}…{tail}"


class Secret:
    """A key that prints masked; ``reveal()`` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret cannot be empty")
        self._value = value
        _register(value)

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        return mask(self._value)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"Secret({self.masked!r})"

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def redact(text: str, *, secrets: Iterable[Secret] = ()) -> str:
    """``text`` with every known key, key-shaped string and auth field value replaced."""
    for secret in secrets:
        _register(secret.reveal())
    if _registered:
        text = _registered_pattern.sub(REDACTED, text)
    text = _KEY_SHAPES.sub(REDACTED, text)
    return _FIELDS.sub(_redact_field, text)


def scrub(text: str) -> str:
    """``text`` with every registered key replaced; ``text`` itself when it holds none."""
    for value in _registered:
        if value in text:
            return _registered_pattern.sub(REDACTED, text)
    return text


def scrub_value(value: Any) -> Any:
    """A decoded JSON value with ``scrub`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub_value(v) for k, v in value.items()}
    return value


def url_credentials(url: str) -> list[str]:
    """The user, password and credential-like query values in ``url``."""
    parts = urlsplit(url)
    found = [part for part in (parts.username, parts.password) if part]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _is_credential(k, v)]
    return found


def strip_url_credentials(url: str) -> str:
    """``url`` without ``user:password@`` and without credential-like query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not _is_credential(k, v)]
    if netloc == parts.netloc and len(kept) == len(pairs):
        return url  # nothing to strip: not even re-encoded
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept), parts.fragment))


def _is_credential(name: str, value: str) -> bool:
    return bool(value) and _CREDENTIAL_PARAM.search(name) is not None


def _redact_field(match: re.Match[str]) -> str:
    return f"{match['name']}{match['sep']}{match['scheme'] or ''}{REDACTED}"


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (args merged in), exception and stack text through ``redact``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = redact(record.getMessage())
            record.args = None
        except (TypeError, ValueError, KeyError):
            # A record whose args do not fit its format: logging reports that
            # itself later; redact the parts so its report leaks nothing.
            record.msg = redact(str(record.msg))
            record.args = tuple(redact(str(a)) for a in _args(record.args))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _args(args: object) -> tuple[object, ...]:
    if isinstance(args, tuple):
        return args
    return () if args is None else (args,)


REDACTED_LOGGERS = ("httpx", "httpcore", "aiohttp", "batchdeck", "engine")


def install_redaction() -> RedactingFilter:
    """Put one ``RedactingFilter`` on batchdeck's, httpx's, aiohttp's loggers and root handlers.

    A logger's filter sees only records logged on that very logger, not its
    children's, so the filter also goes on every existing child logger of those
    names and on the root logger's handlers (where propagated records are
    written). Call it after logging is configured; calling it again is harmless.
    """
    installed = next(
        (f for f in logging.getLogger("batchdeck").filters if isinstance(f, RedactingFilter)),
        None,
    )
    redacting = installed or RedactingFilter()
    names = [
        name
        for name in logging.root.manager.loggerDict
        if any(name == base or name.startswith(base + ".") for base in REDACTED_LOGGERS)
    ]
    targets: list[logging.Filterer] = [logging.getLogger(n) for n in {*REDACTED_LOGGERS, *names}]
    targets.extend(logging.getLogger().handlers)
    for target in targets:
        if redacting not in target.filters:
            target.addFilter(redacting)
    return redacting
