"""The real CLI over real HTTP: an answer cut off at --max-tokens is ``truncated`` on every
provider (not ok, exit 1, counted in the summary), and ``resume --retry-failed --max-tokens``
answers it whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.cli import batchdeck
from tests.fakeserver.fixtures import FakeServer, run_fake_server
from tests.integration.test_http_providers import KEY, KEY_ENV, MODELS, base_url

ANSWER_TOKENS = 64


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY, output_tokens=ANSWER_TOKENS) as fake:
        yield fake


def items(path: Path, n: int) -> Path:
    rows = (orjson.dumps({"id": f"t{i}", "context": f"ticket {i}"}) + b"\n" for i in range(n))
    path.write_bytes(b"".join(rows))
    return path


def export(run_dir: Path, home: Path) -> list[dict[str, object]]:
    done = batchdeck("export", str(run_dir), home=home)
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_cut_off_answers_are_truncated_and_a_larger_limit_retries_them(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    server.reset()
    source = items(tmp_path / "items.jsonl", 4)
    run_dir = tmp_path / "run"
    env = {KEY_ENV[provider]: KEY}
    done = batchdeck(
        "run", str(source), "--model", f"{provider}:{MODELS[provider]}",
        "--base-url", base_url(server, provider), "--max-tokens", "8", "--run-dir", str(run_dir),
        home=tmp_path, extra_env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "truncated       4  100.0%" in done.stderr
    rows = export(run_dir, tmp_path)
    assert {r["status"] for r in rows} == {"truncated"}
    assert {r["finish_reason"] for r in rows} == {"length"}
    assert all(r["output_tokens"] == 8 and r["output"] for r in rows)
    assert server.stats()["requests"] == 4  # the same request would be cut off again

    retried = batchdeck(
        "resume", str(run_dir), "--retry-failed", "--max-tokens", "200",
        home=tmp_path, extra_env=env,
    )  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    rows = export(run_dir, tmp_path)
    assert {(r["status"], r["finish_reason"], r["output_tokens"]) for r in rows} == {
        ("ok", "stop", ANSWER_TOKENS)
    }
    assert server.stats()["requests"] == 8
