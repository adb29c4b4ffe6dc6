"""Key resolution order, the 0600 key file, the keyring, and masking."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path

import pytest

from engine._dotenv import parse_dotenv
from engine._errors import ConfigError
from engine._secrets import Secret, mask
from engine.keys import key_status, keys_file, resolve_key, store_key

OPENAI_KEY = "sk-proj-envkey0123456789abcdWXYZ"


@pytest.fixture(autouse=True)
def in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty working dir (no stray .env) with no preset key in the environment."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for variable in (
        "OPENROUTER_API_KEY",
        "GROQ_API_KEY",
        "TOGETHER_API_KEY",
        "DEEPSEEK_API_KEY",
        "VLLM_API_KEY",
    ):
        monkeypatch.delenv(variable, raising=False)
    return work


def test_environment_comes_first(monkeypatch: pytest.MonkeyPatch, in_tmp_cwd: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    (in_tmp_cwd / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv-0123456789abcdef\n")
    store_key("openai", "sk-from-file-0123456789abcdef")
    found = resolve_key("openai")
    assert found is not None
    assert found.secret.reveal() == OPENAI_KEY
    assert found.source == "env OPENAI_API_KEY"


def test_gemini_prefers_gemini_api_key_then_google_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-google-0123456789abcdefghijklmnop")
    found = resolve_key("gemini")
    assert found is not None and found.source == "env GOOGLE_API_KEY"
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-gemini-0123456789abcdefghijklmnop")
    found = resolve_key("gemini")
    assert found is not None and found.source == "env GEMINI_API_KEY"


def test_dotenv_in_the_working_dir_comes_next(in_tmp_cwd: Path) -> None:
    (in_tmp_cwd / ".env").write_text(
        "# keys for this project\nexport ANTHROPIC_API_KEY='sk-ant-dotenv-0123456789'  # mine\n"
    )
    store_key("anthropic", "sk-ant-file-0123456789abcdef")
    found = resolve_key("anthropic")
    assert found is not None
    assert found.secret.reveal() == "sk-ant-dotenv-0123456789"
    assert found.source == ".env"


def test_keys_file_comes_last_and_names_its_path(batchdeck_home: Path) -> None:
    where = store_key("groq", "gsk_file0123456789abcdefghij")
    path = batchdeck_home / "config" / "keys.json"
    assert where == f"keys file {path}"
    found = resolve_key("groq")
    assert found is not None
    assert found.secret.reveal() == "gsk_file0123456789abcdefghij"
    assert found.source == f"keys file {path}"


def test_no_key_anywhere_is_none() -> None:
    assert resolve_key("openai") is None


def test_keys_file_is_created_0600_whatever_the_umask() -> None:
    previous = os.umask(0)
    try:
        store_key("openai", "sk-umask0-0123456789abcdef")
        store_key("deepseek", "sk-second-0123456789abcdef")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(keys_file().stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(keys_file().parent.stat().st_mode) & 0o077 == 0
    assert resolve_key("openai") is not None
    assert resolve_key("deepseek") is not None


def test_storing_again_tightens_a_loose_existing_file() -> None:
    store_key("openai", "sk-first-0123456789abcdef")
    keys_file().chmod(0o644)
    store_key("openai", "sk-second-0123456789abcdef")
    assert stat.S_IMODE(keys_file().stat().st_mode) == 0o600
    found = resolve_key("openai")
    assert found is not None and found.secret.reveal() == "sk-second-0123456789abcdef"


def test_unknown_provider_and_empty_key_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'opneai'"):
        store_key("opneai", "sk-x")
    with pytest.raises(ConfigError, match="unknown provider"):
        resolve_key("opneai")
    with pytest.raises(ConfigError, match="empty"):
        store_key("openai", "  ")


def test_a_corrupt_keys_file_is_a_config_error() -> None:
    keys_file().parent.mkdir(parents=True)
    keys_file().write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        resolve_key("openai")


def test_key_status_lists_every_provider_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    statuses = {status.provider: status for status in key_status()}
    assert {"openai", "anthropic", "gemini", "ollama", "groq"} <= set(statuses)
    openai = statuses["openai"]
    assert openai.present and openai.required
    assert openai.source == "env OPENAI_API_KEY"
    assert openai.masked == "sk-proj-…WXYZ"
    assert not statuses["anthropic"].present
    assert statuses["anthropic"].masked is None
    assert not statuses["ollama"].required
    assert OPENAI_KEY not in repr(statuses)


class _FakeKeyring(types.ModuleType):
    def __init__(self, *, broken: bool = False) -> None:
        super().__init__("keyring")
        self.stored: dict[tuple[str, str], str] = {}
        self.broken = broken

    def get_password(self, service: str, user: str) -> str | None:
        if self.broken:
            raise _KeyringError("No recommended backend was available.")
        return self.stored.get((service, user))

    def set_password(self, service: str, user: str, value: str) -> None:
        if self.broken:
            raise _KeyringError("No recommended backend was available.")
        self.stored[(service, user)] = value


class _KeyringError(Exception):
    pass


@pytest.fixture
def fake_keyring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> _FakeKeyring:
    """A ``keyring`` module, with BATCHDECK_HOME unset so it is consulted (config in tmp_path)."""
    keyring = _FakeKeyring(broken=getattr(request, "param", False))
    errors = types.ModuleType("keyring.errors")
    errors.KeyringError = _KeyringError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", keyring)
    monkeypatch.setitem(sys.modules, "keyring.errors", errors)
    monkeypatch.delenv("BATCHDECK_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return keyring


def test_store_prefers_a_working_keyring(fake_keyring: _FakeKeyring) -> None:
    assert store_key("anthropic", "sk-ant-keyring-0123456789") == "keyring"
    assert fake_keyring.stored == {("batchdeck", "anthropic"): "sk-ant-keyring-0123456789"}
    assert not keys_file().exists()
    found = resolve_key("anthropic")
    assert found is not None
    assert (found.source, found.secret.reveal()) == ("keyring", "sk-ant-keyring-0123456789")


@pytest.mark.parametrize("fake_keyring", [True], indirect=True)
def test_a_broken_keyring_falls_back_to_the_keys_file(
    fake_keyring: _FakeKeyring, tmp_path: Path
) -> None:
    where = store_key("anthropic", "sk-ant-fallback-0123456789")
    assert where.startswith("keys file ")
    assert keys_file().is_relative_to(tmp_path / "xdg-config")
    found = resolve_key("anthropic")
    assert found is not None and found.source.startswith("keys file ")


def test_batchdeck_home_keeps_the_keyring_out(
    fake_keyring: _FakeKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_keyring.stored[("batchdeck", "openai")] = "sk-real-user-key-0123456789"
    monkeypatch.setenv("BATCHDECK_HOME", str(tmp_path / "isolated"))
    assert resolve_key("openai") is None
    assert store_key("openai", "sk-isolated-0123456789abcd").startswith("keys file ")
    assert fake_keyring.stored == {("batchdeck", "openai"): "sk-real-user-key-0123456789"}


def test_secret_never_prints_its_value() -> None:
    secret = Secret("sk-proj-abcdefghijklmnopqrstuvwxyz1234")
    assert secret.reveal() == "sk-proj-abcdefghijklmnopqrstuvwxyz1234"
    for shown in (str(secret), repr(secret), f"{secret}", f"{secret!r}", f"{secret:>40}"):
        assert "abcdefghij" not in shown
        assert "1234" in shown
    assert str(secret) == "sk-proj-…1234"
    assert Secret("sk-proj-abcdefghijklmnopqrstuvwxyz1234") == secret
    with pytest.raises(ValueError):
        Secret("")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz-9876", "sk-ant-…9876"),
        ("AIzaSyA1234567890abcdefghijklmnopqrstu", "AIza…rstu"),
        ("gsk_abcdefghijklmnopqrstuvwxyz4321", "gsk_…4321"),
        ("short-local-key", "…"),
    ],
)
def test_mask_keeps_only_the_prefix_and_last_four(value: str, masked: str) -> None:
    assert mask(value) == masked


def test_dotenv_parsing() -> None:
    text = "\n".join(
        [
            "# comment",
            "PLAIN=value",
            "SPACED = spaced value  # trailing comment",
            "export EXPORTED=yes",
            "SINGLE='literal \\n # not a comment'",
            'DOUBLE="line\\nbreak \\"quoted\\""  # comment',
            "HASH=abc#def",
            "EMPTY=",
            "not an assignment",
        ]
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value",
        "SPACED": "spaced value",
        "EXPORTED": "yes",
        "SINGLE": "literal \\n # not a comment",
        "DOUBLE": 'line\nbreak "quoted"',
        "HASH": "abc#def",
        "EMPTY": "",
    }
