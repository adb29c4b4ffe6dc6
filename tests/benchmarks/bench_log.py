"""The checkpoint log's costs, printed: ``python tests/benchmarks/bench_log.py [--records N]``.

1. encoding one result record (``result_record`` + ``encode``), in us;
2. ``write_group`` throughput with an fsync per 200 records, per record, and none;
3. ``scan`` of an N-record log (default 1,000,000, ~700 MB), median of 3 runs, with
   both indexes, and the peak RSS of the process that scanned (budget: 3 s; the
   whole 1M-item run must fit in 150 MB);
4. ``iter_results`` over the same log, and ``recover`` of it with a torn tail.

Records look like a real run's: a ~300-byte output, the item's fields, usage and
cost. Each read runs in a fresh child process so its figures (time, ``VmHWM``)
are its own. Everything is written to a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from engine._results import ItemResult, Usage
from engine.log import Durability, LogWriter, encode, header_record, result_record
from tests.benchmarks._common import run_child

_GROUP = 200
"""Records per group commit, as the engine's log task gathers them."""

_CHILD = """
import sys, time
from engine import log
what, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if what == "iter":
    count = sum(1 for _ in log.iter_results(path))
elif what == "recover":
    count = log.recover(path).bad_bytes
else:
    count = log.scan(path, index=what).ok
elapsed = time.perf_counter() - start
with open("/proc/self/status") as status:
    rss_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
print(count, elapsed, rss_mb)
"""


def sample(i: int) -> ItemResult:
    item_id = f"ticket-{i:07d}"
    return ItemResult(
        id=item_id,
        model="openai:gpt-4o-mini",
        status="ok",
        line=i + 1,
        fields={
            "id": item_id,
            "context": f"Ticket {i}: my invoice shows a double charge for the March plan and "
            "support has not answered in two days. Please refund one of them.",
            "tier": "pro",
            "channel": "email",
        },
        output='{"label": "billing", "urgency": "high", "summary": "'
        + "Customer reports a duplicate charge on the March invoice and asks for a refund. " * 3
        + '"}',
        usage=Usage(182, 74),
        cost_usd=0.0000717,
        latency_ms=812.4,
        attempts=1,
        finish_reason="stop",
    )


def bench_encode(rounds: int = 200_000) -> None:
    results = [sample(i) for i in range(1000)]
    start = time.perf_counter()
    for n in range(rounds):
        encode(result_record(results[n % 1000]))
    per_record = (time.perf_counter() - start) / rounds * 1e6
    records = [result_record(r) for r in results]
    start = time.perf_counter()
    for n in range(rounds):
        encode(records[n % 1000])
    encode_only = (time.perf_counter() - start) / rounds * 1e6
    size = sum(len(encode(r)) for r in records) / len(records)
    print(
        f"1. encode: result_record + encode {per_record:.2f} us/record, encode alone "
        f"{encode_only:.2f} us ({size:.0f}-byte lines)"
    )


def bench_writes(work: Path) -> None:
    lines = [encode(result_record(sample(i))) for i in range(20_000)]
    print("2. write_group:")
    cases: tuple[tuple[str, Durability, int, int], ...] = (
        (f"fsync per {_GROUP} records", "fsync", _GROUP, 20_000),
        ("fsync per record", "fsync", 1, 2_000),
        (f"no fsync, {_GROUP} per write", "flush", _GROUP, 20_000),
    )
    for label, durability, group, count in cases:
        path = work / f"writes-{durability}-{group}.jsonl"
        with LogWriter.create(
            path, header_record("b", config="c", input=None), durability=durability
        ) as writer:
            start = time.perf_counter()
            for at in range(0, count, group):
                writer.write_group(lines[at : at + group])
            elapsed = time.perf_counter() - start
        path.unlink()
        print(
            f"   {label:<26} {count / elapsed:>10,.0f} records/s "
            f"({elapsed / count * 1e6:,.1f} us each)"
        )


def write_log(path: Path, records: int) -> None:
    with LogWriter.create(
        path, header_record("b", config="c", input=None), durability="flush"
    ) as writer:
        for at in range(0, records, 10_000):
            writer.write_group(
                [encode(result_record(sample(i))) for i in range(at, min(records, at + 10_000))]
            )


def child(what: str, path: Path) -> tuple[float, float]:
    out, _ = run_child(_CHILD, what, str(path))
    _, elapsed, rss = out.split()
    return float(elapsed), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bench_encode()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench_writes(work)
        path = work / "log.jsonl"
        start = time.perf_counter()
        write_log(path, args.records)
        size_mb = path.stat().st_size / 1e6
        print(
            f"   (wrote a {args.records:,}-record log of {size_mb:,.0f} MB in "
            f"{time.perf_counter() - start:.1f} s)"
        )
        for index, note in (("line", "default"), ("id", "--force")):
            runs = [child(index, path) for _ in range(args.runs)]
            times = sorted(t for t, _ in runs)
            print(
                f"3. scan, index={index} ({note}): {statistics.median(times):.2f} s median "
                f"(runs: {', '.join(f'{t:.2f}' for t in times)}), "
                f"peak RSS {max(r for _, r in runs):.0f} MB"
            )
        elapsed, rss = child("iter", path)
        print(
            f"4. iter_results: {elapsed:.2f} s for {args.records:,} results, peak RSS {rss:.0f} MB"
        )
        with path.open("ab") as log:
            log.write(encode(result_record(sample(args.records)))[:-40])
        elapsed, rss = child("recover", path)
        print(f"   recover (torn last line): {elapsed * 1000:.1f} ms, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
