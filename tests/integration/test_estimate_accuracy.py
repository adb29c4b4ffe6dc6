"""The estimate against what each provider on the fake server then reports and bills for the
sample tickets: input tokens as the family counts them, output as the user expects it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine._config import make_config
from engine._estimate import estimate
from tests.cli import SAMPLES, batchdeck
from tests.fakeserver.fixtures import FakeServer, run_fake_server
from tests.integration.test_http_providers import KEY, KEY_ENV, MODELS, base_url
from tests.test_estimate_cli import assert_within_a_quarter

TICKETS = SAMPLES / "tickets.jsonl"
PROMPT = "Classify this support ticket: {context}"
ANSWER_TOKENS = 16


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with run_fake_server(api_key=KEY, output_tokens=ANSWER_TOKENS) as fake:
        yield fake


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_estimate_is_within_a_quarter_of_what_the_provider_reports(
    server: FakeServer, provider: str, tmp_path: Path
) -> None:
    model = f"{provider}:{MODELS[provider]}"
    run_dir = tmp_path / "run"
    done = batchdeck(
        "run", str(TICKETS), "--model", model, "--prompt", PROMPT,
        "--base-url", base_url(server, provider), "--run-dir", str(run_dir),
        home=tmp_path, extra_env={KEY_ENV[provider]: KEY},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    actual = orjson.loads((run_dir / "summary.json").read_bytes())
    config = make_config(input=str(TICKETS), models=(model,), prompt=PROMPT)
    assert_within_a_quarter(estimate(config, expect_output=ANSWER_TOKENS), actual)
