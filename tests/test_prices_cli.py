"""``batchdeck prices [MODEL]`` and ``batchdeck prices update``, run as a user runs them.

``update`` fetches from a server on loopback standing in for genai-prices' published data
(``BATCHDECK_PRICES_URL``): no test reaches the network.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

from engine._prices import PriceTable
from tests.cli import batchdeck

PUBLISHED = [
    {
        "id": "openai",
        "name": "OpenAI",
        "api_pattern": "https://api\\.openai\\.com",
        "models": [
            {
                "id": "gpt-fetched",
                "match": {"equals": "gpt-fetched"},
                "prices": {"input_mtok": 1.5, "output_mtok": 6, "cache_read_mtok": 0.15},
            }
        ],
    }
]
"""genai-prices' raw data format, cut down to one model the bundled data does not know."""


@contextmanager
def serving(body: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_model_s_price_its_tiers_and_the_date_of_the_data(tmp_path: Path) -> None:
    done = batchdeck("prices", "gemini:gemini-2.5-pro", home=tmp_path)
    assert done.returncode == 0, done.stderr
    head, line = done.stdout.splitlines()
    assert head == f"prices: {PriceTable.load(tmp_path / 'none.json').as_of}"
    price = PriceTable.load(tmp_path / "none.json").lookup("gemini:gemini-2.5-pro")
    assert price is not None and line == f"gemini:gemini-2.5-pro: {price.describe()}"
    assert "above 200,000 input tokens" in line


def test_an_unknown_model_is_unpriced_and_a_local_one_free(tmp_path: Path) -> None:
    done = batchdeck("prices", "simulate:my-own-model", home=tmp_path)
    assert done.returncode == 1 and "simulate:my-own-model: unpriced" in done.stdout
    assert batchdeck("prices", "ollama:llama3", home=tmp_path).stdout.endswith(
        ": free (a local server)\n"
    )


def test_the_user_file_wins_and_says_so(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    mine = {"openai:gpt-4o-mini": {"input": 7, "output": 9}}
    (config / "prices.json").write_bytes(orjson.dumps({"models": mine}))
    done = batchdeck("prices", "openai:gpt-4o-mini", home=tmp_path)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == (
        "openai:gpt-4o-mini: $7 in / $9 out per Mtok (your prices.json)"
    )
    assert f"yours: {config / 'prices.json'}" in done.stdout.splitlines()[0]


def test_a_provider_lists_its_models(tmp_path: Path) -> None:
    done = batchdeck("prices", "anthropic", home=tmp_path)
    lines = done.stdout.splitlines()[1:]
    assert done.returncode == 0 and len(lines) > 10
    assert all(line.startswith("anthropic:claude") for line in lines)
    unknown = batchdeck("prices", "nowhere", home=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1


def test_update_fetches_only_when_asked_and_is_used_from_then_on(tmp_path: Path) -> None:
    before = batchdeck("prices", "openai:gpt-fetched", home=tmp_path)
    assert before.returncode == 1  # the bundled data does not know it
    with serving(orjson.dumps(PUBLISHED)) as url:
        done = batchdeck("prices", "update", home=tmp_path, extra_env={"BATCHDECK_PRICES_URL": url})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "config" / "genai-prices.json").is_file()
    after = batchdeck("prices", "openai:gpt-fetched", home=tmp_path)
    assert after.returncode == 0
    assert after.stdout.startswith("prices: genai-prices data fetched ")
    assert "openai:gpt-fetched: $1.5 in / $6 out per Mtok, cache read $0.15" in after.stdout


def test_an_update_that_is_not_price_data_changes_nothing(tmp_path: Path) -> None:
    with serving(b'{"not": "prices"}') as url:
        done = batchdeck("prices", "update", home=tmp_path, extra_env={"BATCHDECK_PRICES_URL": url})
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "did not answer with genai-prices data" in done.stderr
    assert not (tmp_path / "config" / "genai-prices.json").exists()
