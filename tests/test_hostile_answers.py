"""A hostile server's 200 answers: a body too big to hold, a gzip bomb, a key echoed back.

Each is a real HTTP exchange with the fake server (``tests/fakeserver/_hostile.py``).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from engine import log
from engine._errors import ProviderError
from engine.providers import CallRequest, make_provider
from tests.benchmarks._common import PEAK_RSS_CODE
from tests.cli import REPO, batchdeck, env
from tests.fakeserver.fixtures import FakeServer, run_fake_server, serve_in_process

KEY = "sk-hostile-5e8b2c7a1f4d9e3b6a0c"
SHORT_KEY = "k3y9"
HUGE = 200 << 20
MAX_BODY_BYTES = 32 << 20
"""The cap the issue asks for."""


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    async with serve_in_process(api_key=KEY, hostile_body_bytes=HUGE) as fake:
        yield fake


async def call(server: FakeServer, prompt: str, key: str = KEY) -> object:
    provider = make_provider("openai", base_url=server.openai_base_url, key=key)
    try:
        return await provider.call(CallRequest(model="gpt-4o-mini", prompt=prompt, timeout_s=60))
    finally:
        await provider.aclose()


@pytest.mark.parametrize("kind", ["huge_body", "huge_body_declared", "gzip_bomb"])
@pytest.mark.anyio
async def test_a_body_past_the_cap_fails_bad_response_in_bounded_memory(
    server: FakeServer, kind: str
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ProviderError) as caught:
            await call(server, f"hello [[hostile:{kind}]]")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.kind == "bad_response"
    assert f"over {MAX_BODY_BYTES >> 20} MiB" in caught.value.message
    assert not caught.value.retryable
    assert peak < 3 * MAX_BODY_BYTES < HUGE


@pytest.mark.anyio
async def test_an_echoed_key_never_leaves_the_provider(server: FakeServer) -> None:
    result = await call(server, "hello [[hostile:echo_key]]")
    text = result.text  # type: ignore[attr-defined]
    assert KEY not in text and "[redacted]" in text


@pytest.mark.anyio
async def test_a_key_of_four_characters_is_redacted_too(server: FakeServer) -> None:
    server.configure(api_key=SHORT_KEY)
    result = await call(server, "hello [[hostile:echo_key]]", key=SHORT_KEY)
    assert SHORT_KEY not in result.text  # type: ignore[attr-defined]


# -- the real CLI -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY, hostile_body_bytes=600 << 20) as server:
        yield server


def write_items(path: Path, contexts: list[str]) -> Path:
    rows = [orjson.dumps({"id": f"i{n}", "context": c}) for n, c in enumerate(contexts)]
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def test_huge_answers_keep_the_process_small(hostile_server: FakeServer, tmp_path: Path) -> None:
    """Four 600 MB bodies at four workers (5 GB of RSS before the cap): the peak RSS stays
    within a few caps of a run's ordinary footprint."""
    items = write_items(tmp_path / "items.jsonl", ["x [[hostile:huge_body]]"] * 4 + ["plain"])
    out = tmp_path / "out.jsonl"
    # The run's own peak (PEAK_RSS_CODE): under xdist its ru_maxrss was the test worker's 365 MB.
    measure = (
        "import sys; from engine.cli import main; code = main(sys.argv[1:])\n"
        + PEAK_RSS_CODE
        + "sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", measure, "run", str(items), "--model", "openai:gpt-4o-mini",
         "--base-url", hostile_server.openai_base_url, "--workers", "4", "--output", str(out),
         "--quiet"],
        cwd=REPO, env=env(tmp_path, OPENAI_API_KEY=KEY), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    peak_mb = float(proc.stdout.split()[-1])
    assert peak_mb < 100 + 4 * 2 * MAX_BODY_BYTES / (1 << 20), peak_mb
    rows = {r["id"]: r for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert rows["i4"]["status"] == "ok"
    assert all(rows[f"i{n}"]["error"].startswith("bad_response: ") for n in range(4))


@pytest.mark.parametrize("key", [KEY, SHORT_KEY])
def test_an_echoed_key_is_in_no_file_batchdeck_writes(
    hostile_server: FakeServer, tmp_path: Path, key: str
) -> None:
    hostile_server.configure(api_key=key)
    try:
        items = write_items(tmp_path / "items.jsonl", ["x [[hostile:echo_key]]"] * 3)
        run_dir, out, export = tmp_path / "run", tmp_path / "out.jsonl", tmp_path / "export.csv"
        done = batchdeck(
            "run", str(items), "--model", "openai:gpt-4o-mini", "--run-dir", str(run_dir),
            "--base-url", hostile_server.openai_base_url, "--output", str(out),
            home=tmp_path, extra_env={"OPENAI_API_KEY": key},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        exported = batchdeck("export", str(run_dir), "--output", str(export), home=tmp_path)
        assert exported.returncode == 0, exported.stderr
    finally:
        hostile_server.reset(config=True)
    assert [r.output for r in log.iter_results(run_dir / "log.jsonl")] == [
        "Sure. Your key is [redacted] (again: key=[redacted])."
    ] * 3
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != items]
    assert out in written and export in written and run_dir / "log.jsonl" in written
    for path in written:
        assert key.encode() not in path.read_bytes(), path
    assert key not in done.stderr + exported.stderr


@pytest.mark.parametrize("note_type", ["string", "integer"])
def test_a_key_escaped_in_a_json_answer_is_in_no_file_batchdeck_writes(
    hostile_server: FakeServer, tmp_path: Path, note_type: str
) -> None:
    """The text holds ``\\u0073\\u006b...``, which decodes to the key: as a parsed field
    (``string``: the answer is valid) or in the schema's complaint (``integer``)."""
    schema = tmp_path / "schema.json"
    schema.write_bytes(orjson.dumps({
        "type": "object", "properties": {"note": {"type": note_type}}, "required": ["note"],
    }))  # fmt: skip
    items = write_items(tmp_path / "items.jsonl", ["x [[hostile:echo_key_escaped]]"] * 2)
    run_dir, out, export = tmp_path / "run", tmp_path / "out.jsonl", tmp_path / "export.csv"
    done = batchdeck(
        "run", str(items), "--model", "openai:gpt-4o-mini", "--run-dir", str(run_dir),
        "--base-url", hostile_server.openai_base_url, "--output", str(out), "--schema",
        str(schema), "--retries", "0", home=tmp_path, extra_env={"OPENAI_API_KEY": KEY},
    )  # fmt: skip
    assert done.returncode == (0 if note_type == "string" else 1), done.stderr
    exported = batchdeck("export", str(run_dir), "--output", str(export), home=tmp_path)
    assert exported.returncode == 0, exported.stderr
    results = list(log.iter_results(run_dir / "log.jsonl"))
    if note_type == "string":
        assert [r.parsed for r in results] == [{"note": "[redacted]"}] * 2
    else:
        assert all(r.error is not None and "[redacted]" in r.error.message for r in results)
    for path in (p for p in tmp_path.rglob("*") if p.is_file() and p != items):
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in done.stderr + exported.stderr
