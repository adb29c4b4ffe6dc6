"""Keys never reach a log line or an error message."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from engine._errors import ProviderError
from engine._schema import OutputValidator
from engine._secrets import REDACTED, RedactingFilter, Secret, install_redaction, redact
from engine.providers import CallRequest
from tests._mock_provider import json_response, mock_provider

LOCAL_KEY = "local-server-token-42"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer sk-proj-abcdefghijklmnopqrstuv",
        "headers={'authorization': 'Bearer abc.def.ghi'}",
        '{"x-api-key": "sk-ant-api03-abcdefghijkl"}',
        "x-goog-api-key=AIzaSyA1234567890abcdefghijklmnopqrstu",
        "POST https://generativelanguage.googleapis.com/v1beta/models/x:generateContent?key=abc123",
        "api_key=hunter2hunter2",
        "api-key: hunter2hunter2",
        "the key sk-abcdefghijklmnopqrstuvwxyz leaked",
        "the key sk-ant-api03-abcdefghijklmnop leaked",
        "the key AIzaSyA1234567890abcdefghijklmnopqrstu leaked",
        "the key gsk_abcdefghijklmnopqrstuvwxyz leaked",
    ],
)
def test_redact_removes_auth_fields_and_key_shaped_strings(text: str) -> None:
    cleaned = redact(text)
    assert REDACTED in cleaned
    for secret in ("abcdefghij", "hunter2", "1234567890", "abc.def", "abc123"):
        assert secret not in cleaned


def test_redact_removes_any_key_held_as_a_secret_even_when_not_key_shaped() -> None:
    Secret(LOCAL_KEY)
    assert redact(f"server said: bad token {LOCAL_KEY}!") == f"server said: bad token {REDACTED}!"


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "HTTP 429: Rate limit reached for gpt-4o-mini; retry in 20s (task-12, sk-2)."
    assert redact(text) == text


def test_redacting_twice_is_stable() -> None:
    once = redact("Authorization: Bearer sk-proj-abcdefghijklmnopqrstuv")
    assert redact(once) == once


@pytest.fixture
def captured() -> Iterator[list[logging.LogRecord]]:
    """Records reaching a handler on the root logger, after ``install_redaction``."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = Keep()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        _uninstall()


def _uninstall() -> None:
    """Take every ``RedactingFilter`` off the loggers and root handlers it was put on."""
    loggers = [v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger)]
    for target in [*loggers, *logging.getLogger().handlers]:
        for f in [f for f in target.filters if isinstance(f, RedactingFilter)]:
            target.removeFilter(f)


def _text(record: logging.LogRecord) -> str:
    return logging.Formatter("%(message)s").format(record)


def test_filter_redacts_message_args_and_exceptions(captured: list[logging.LogRecord]) -> None:
    install_redaction()
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz"
    logging.getLogger("httpx").info("HTTP Request: %s %s", "POST", f"https://x/?key={key}")
    logging.getLogger("batchdeck.run").warning("headers: %r", {"authorization": f"Bearer {key}"})
    try:
        raise RuntimeError(f"boom with {key}")
    except RuntimeError:
        logging.getLogger("engine.providers").exception("call failed")
    logging.getLogger("httpcore.http11").debug("send_request_headers x-api-key=%s", key)
    assert len(captured) == 4
    for record in captured:
        assert key not in _text(record)
        assert "abcdefghij" not in _text(record)


def test_install_is_idempotent() -> None:
    first = install_redaction()
    second = install_redaction()
    try:
        assert first is second
        assert logging.getLogger("httpx").filters.count(first) == 1
    finally:
        _uninstall()


def test_a_record_with_mismatched_args_does_not_raise_and_leaks_nothing() -> None:
    record = logging.LogRecord(
        "batchdeck", logging.INFO, __file__, 1, "%s %s", ("sk-proj-abcdefghijklmnopqrstuv",), None
    )
    assert RedactingFilter().filter(record)
    assert "abcdefghij" not in str(record.msg) + str(record.args)


@pytest.mark.anyio
async def test_provider_errors_redact_a_key_the_server_echoes() -> None:
    key = "sk-echoed-0123456789abcdefghij"
    body = {"error": {"message": f"Invalid key {key} (x-api-key: {key})", "type": "auth"}}
    async with mock_provider("openai", json_response(401, body), key=key) as mock:
        with pytest.raises(ProviderError) as caught:
            await mock.provider.call(CallRequest(model="gpt-4o-mini", prompt="x"))
    assert key not in caught.value.message
    assert key not in repr(caught.value)
    assert caught.value.kind == "auth"


SCHEMA_KEY = "schema-held-token-1234"


@pytest.mark.parametrize("note_type", ["string", "integer"])
def test_the_validator_keeps_a_key_the_answer_spelled_escaped_out(note_type: str) -> None:
    """Online answers and batch results both go through ``OutputValidator.parse``: what it
    decodes, and the schema's complaint that quotes it, hold no key."""
    Secret(SCHEMA_KEY)
    schema = {"type": "object", "properties": {"note": {"type": note_type}}}
    escaped = "".join(f"\\u{ord(c):04x}" for c in SCHEMA_KEY)
    text = f'{{"note": "{escaped}"}}'
    assert SCHEMA_KEY not in text
    validator = OutputValidator(schema)
    if note_type == "string":
        assert validator.parse(text) == {"note": REDACTED}
    else:
        with pytest.raises(ValueError, match="does not match the schema") as caught:
            validator.parse(text)
        assert SCHEMA_KEY not in str(caught.value) and REDACTED in str(caught.value)
