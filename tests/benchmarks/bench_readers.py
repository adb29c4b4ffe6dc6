"""Reader throughput and peak memory, printed: ``python tests/benchmarks/bench_readers.py [N]``.

Writes an N-line JSONL file (default 1,000,000 lines of ~200 bytes, about
200 MB) and smaller CSV, TXT and JSON-array files to a temporary directory,
then reads each one in a fresh child process, so the peak RSS printed is that
of a whole Python process that imported the engine and read the file (its
``VmHWM``: ``ru_maxrss`` would include the parent's, as it survives exec). The
budget: JSONL under 10 us an item, peak RSS far under 150 MB. Then times prompt
rendering (budget: under 2 us). Deletes its files when done.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

_DEFAULT_LINES = 1_000_000
_SMALL_FRACTION = 10
"""The CSV, TXT and JSON files get a tenth of the JSONL's items."""

_CHILD = """
import sys, time
from engine.readers import count_items, read_items
path, fmt = sys.argv[1], sys.argv[2]
started = time.perf_counter()
total = count_items(path, fmt)
counted = time.perf_counter() - started
started = time.perf_counter()
items = invalid = 0
for item in read_items(path, fmt, on_warning=lambda message: None):
    if type(item).__name__ == "Item":
        items += 1
    else:
        invalid += 1
elapsed = time.perf_counter() - started
with open("/proc/self/status") as status:
    rss_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
print(f"{fmt:5}  {items:>9,} items  {invalid} invalid  "
      f"count_items={total:,} in {counted:.2f} s  read {elapsed:.2f} s = "
      f"{items / elapsed:>9,.0f} items/s ({elapsed / items * 1e6:.2f} us each)  "
      f"peak RSS {rss_mb:.0f} MB")
"""

_TEMPLATES = """
import timeit
from engine._template import PromptTemplate, render_item
template = PromptTemplate.parse(
    "Classify this support ticket from a {customer_tier} customer (via {channel}).\\n\\n{context}"
)
fields = {"id": "T-1", "context": "I was charged twice for May. " * 8,
          "customer_tier": "pro", "channel": "email", "created_at": "2024-05-02T08:14:09Z"}
own = {**fields, "prompt": "Translate it to English, then classify it."}
rounds = 200_000
for label, call in (
    ("render", lambda: template.render(fields)),
    ("render_item", lambda: render_item(template, fields)),
    ("render_item, own prompt", lambda: render_item(template, own)),
):
    seconds = timeit.timeit(call, number=rounds)
    print(f"template {label}: {seconds / rounds * 1e6:.2f} us")
"""

_WORDS = (
    "refund invoice login password shipping delayed broken screen charged twice cancel plan "
    "upgrade export data missing order wrong size support agent thanks please urgent today"
).split()


def _ticket(rng: random.Random, n: int) -> dict[str, object]:
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(14, 22)))
    return {
        "id": f"T-{n:07d}",
        "context": text,
        "customer_tier": rng.choice(["free", "pro", "enterprise"]),
        "channel": rng.choice(["email", "chat", "phone"]),
        "created_at": f"2024-05-{rng.randint(1, 28):02d}T10:{rng.randint(0, 59):02d}:00Z",
    }


def _write(directory: Path, lines: int) -> dict[str, Path]:
    rng = random.Random(7)
    paths = {fmt: directory / f"items.{fmt}" for fmt in ("jsonl", "csv", "txt", "json")}
    small = lines // _SMALL_FRACTION
    with paths["jsonl"].open("wb") as jsonl, paths["csv"].open("w", newline="") as csv_file:
        csv_file.write("id,context,customer_tier,channel,created_at\n")
        for n in range(lines):
            ticket = _ticket(rng, n)
            jsonl.write(orjson.dumps(ticket) + b"\n")
            if n < small:
                csv_file.write(",".join(str(value) for value in ticket.values()) + "\n")
    with paths["txt"].open("w") as txt:
        txt.writelines(f"{_ticket(rng, n)['context']}\n" for n in range(small))
    paths["json"].write_bytes(orjson.dumps([_ticket(rng, n) for n in range(small)]))
    return paths


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else _DEFAULT_LINES
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as directory:
        paths = _write(Path(directory), lines)
        size_mb = paths["jsonl"].stat().st_size / 1e6
        per_line = size_mb * 1e6 / lines
        print(f"JSONL: {lines:,} lines, {size_mb:.0f} MB ({per_line:.0f} bytes a line)")
        for fmt, path in paths.items():
            subprocess.run(
                [sys.executable, "-c", _CHILD, str(path), fmt], check=True, cwd=root, timeout=600
            )
        subprocess.run([sys.executable, "-c", _TEMPLATES], check=True, cwd=root, timeout=600)


if __name__ == "__main__":
    main()
