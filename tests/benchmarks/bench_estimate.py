"""The pre-flight estimate against the run it estimates, per provider, printed.

Run from the repository root: ``python -m tests.benchmarks.bench_estimate``.
For each sample file (tickets, reviews, headlines, and the tickets with their
schema) and each provider (``simulate``, and OpenAI, Anthropic and Gemini on
the fake server), it asks the engine's ``estimate`` for likely input tokens,
output tokens and cost, runs the real CLI on the same data, and prints both
and the ratio estimate / actual (target: 0.75 to 1.25).

How the estimate counts is printed with it: ``simulate`` makes its answers in
batchdeck, so its output is counted exactly; the fake server answers every call
with ``--answer-tokens`` output tokens (16 by default), which the estimate
cannot know and is told (``expect_output``, the CLI's ``--expect-output``), so
the output and cost rows of the fake server measure the input count and the
pricing, not a guess of answer lengths. The fake server counts four bytes a
token, as the hosted families do, and a structured-output schema's bytes as input,
as they bill it, plus nothing for the chat framing, which the estimate adds (7
tokens a call): that is what its input ratio shows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine._config import RunConfig, make_config
from engine._estimate import estimate
from engine._schema import load_schema
from tests.benchmarks._common import REPO
from tests.fakeserver.fixtures import FakeServer, run_fake_server

SAMPLES = REPO / "sample_data"
KEY = "sk-bench-estimate"
MODELS = {
    "simulate": "gpt-4o-mini",
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash",
}
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    prompt: str | None
    schema: str | None = None


CASES = (
    Case("tickets", "tickets.jsonl", "Classify this support ticket: {context}"),
    Case("tickets+schema", "tickets.jsonl", None, "schemas/ticket_label.json"),
    Case("reviews", "reviews.csv", None),
    Case("headlines", "headlines.txt", "Tag this headline by topic: {text}"),
)


def flags(case: Case) -> list[str]:
    out = ["--prompt", case.prompt] if case.prompt else []
    if case.schema:
        out += ["--schema", str(SAMPLES / case.schema)]
    return out


def config_of(case: Case, model: str) -> RunConfig:
    return make_config(
        input=str(SAMPLES / case.file),
        models=(model,),
        prompt=case.prompt,
        output_schema=None if case.schema is None else load_schema(str(SAMPLES / case.schema)),
        sim={"latency_ms": 0},
    )


def actual(case: Case, provider: str, server: FakeServer, home: Path) -> dict[str, float]:
    run_dir = home / f"{case.name}-{provider}"
    model = f"{provider}:{MODELS[provider]}"
    args = ["run", str(SAMPLES / case.file), "--model", model, *flags(case)]
    args += ["--run-dir", str(run_dir), "--sim-latency-ms", "0", "--quiet"]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(BATCHDECK_HOME=str(home), PYTHONPATH=str(REPO))
    if provider != "simulate":
        url = server.openai_base_url if provider == "openai" else server.url
        args += ["--base-url", url]
        env[KEY_ENV[provider]] = KEY
    done = subprocess.run(
        [sys.executable, "-m", "tui.launch", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{case.name} on {provider}: exit {done.returncode}: {done.stderr}")
    summary = orjson.loads((run_dir / "summary.json").read_bytes())
    return {k: float(summary[k]) for k in ("input_tokens", "output_tokens", "cost_usd")}


def rows(answer_tokens: int) -> Iterator[tuple[str, ...]]:
    with (
        run_fake_server(api_key=KEY, output_tokens=answer_tokens) as server,
        tempfile.TemporaryDirectory() as folder,
    ):
        for case in CASES:
            for provider in MODELS:
                model = f"{provider}:{MODELS[provider]}"
                expect = None if provider == "simulate" else answer_tokens
                found = estimate(config_of(case, model), expect_output=expect)
                real = actual(case, provider, server, Path(folder))
                guess = {
                    "input_tokens": found.input_tokens,
                    "output_tokens": found.output_tokens,
                    "cost_usd": found.cost_likely or 0.0,
                }
                cells = [case.name, provider]
                for name in ("input_tokens", "output_tokens", "cost_usd"):
                    shown = f"{guess[name]:.6f}" if name == "cost_usd" else f"{guess[name]:,.0f}"
                    told = f"{real[name]:.6f}" if name == "cost_usd" else f"{real[name]:,.0f}"
                    ratio = guess[name] / real[name] if real[name] else float("nan")
                    cells += [f"{shown} / {told}", f"{ratio:.2f}"]
                cells.append(found.models[0].output_counted)
                yield tuple(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answer-tokens", type=int, default=16)
    args = parser.parse_args()
    header = ("case", "provider", "input est/actual", "ratio", "output est/actual", "ratio")
    header += ("cost est/actual", "ratio", "output counted")
    print(" | ".join(header))
    worst = 0.0
    for row in rows(args.answer_tokens):
        print(" | ".join(row))
        worst = max(worst, *(abs(float(row[i]) - 1) for i in (3, 5, 7)))
    print(f"largest deviation from actual: {worst:.1%} (target <= 25%)")


if __name__ == "__main__":
    main()
