"""What the headless CLI prints on stderr while a run goes, and the summary at the end.

A subscriber only counts (it is called for every event, ~10,000 a second); a
ticker task prints: a live line rewritten in place when stderr is a terminal,
a plain line every few seconds when it is a file or a pipe. Lines that matter
on their own (a cap reached, a warning, a recovered log) print at once.

A run whose items each make several calls (several models, steps, a judge) counts both:
the calls (what the engine's events and ``RunFinished`` count, one per lane) and the items.
Every lane of an item ends with a result (those after a failed step are logged skipped),
so an item is done when its last step's lanes all have one, and ok when those are (any
earlier lane that was not ok skipped them); on a resume that holds for the items whose
earlier steps a previous execution finished too.

Printing never stops a run: once stderr cannot be written (the terminal was
closed, a pipe's reader left), progress goes quiet and the run goes on to log
what is in flight.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TextIO

import anyio

from engine._events import (
    BatchJob,
    BatchJobEnded,
    BatchJobProgressed,
    BatchJobSubmitted,
    CacheWarning,
    CapReached,
    CostUpdated,
    Event,
    InputWarning,
    ItemFinished,
    ItemRetrying,
    ItemsCounted,
    LogRecovered,
    RateLimitUpdated,
    RunFailed,
    RunFinished,
    RunStarted,
)
from engine._steps import split_lane

LIVE_EVERY_S = 0.25
PLAIN_EVERY_S = 5.0


class Progress:
    def __init__(self, stream: TextIO, *, live: bool, quiet: bool = False) -> None:
        self._stream = stream
        self._live = live and not quiet
        self._quiet = quiet
        self._started = time.monotonic()
        self.total: int | None = None
        self.done = 0
        self.already_done = 0
        self.counts = {"ok": 0, "truncated": 0, "failed": 0, "skipped": 0}
        self.retries = 0
        self.throttled = 0
        self.spent = 0.0
        self.unpriced: set[str] = set()
        """Models with no price among the finished: their cost is unknown, not $0."""
        self.lanes = 1
        """Calls per item: the run's lanes (one per model of each step)."""
        self.items_ok = 0
        self.items_stopped = 0
        """Items every lane of which has a result here: all ok, or not."""
        self._steps = False
        """Whether the lanes are a pipeline's steps (else the models of a run without)."""
        self._last_step: frozenset[str] = frozenset()
        """The lanes of the run's last step."""
        self._open: dict[str, tuple[int, bool]] = {}
        """Items with some of their lanes' results: how many of their last step's, and
        whether all were ok (only items in progress: the dispatcher bounds them)."""
        self._line_shown = False
        self._gone = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, ItemFinished):
            self.done += 1
            result = event.result
            self.counts[result.status] += 1
            if result.unpriced:
                self.unpriced.add(result.model)
            if self.lanes > 1:
                self._item_lane(result.id, result.model, result.status == "ok")
        elif isinstance(event, CostUpdated):
            self.spent = event.spent_usd
        elif isinstance(event, ItemRetrying):
            self.retries += 1
        elif isinstance(event, ItemsCounted):
            self.total = event.total
        elif isinstance(event, RateLimitUpdated):
            self.throttled = max(self.throttled, event.throttled)
        elif isinstance(event, RunStarted):
            self.already_done = event.already_done
            self.lanes = max(1, len(event.models))
            self._steps = any(split_lane(lane)[0] for lane in event.models)
            last = split_lane(event.models[-1])[0] if event.models else ""
            self._last_step = frozenset(m for m in event.models if split_lane(m)[0] == last)
            if event.resumed:
                self.note(f"resuming {event.run_id}: {event.already_done} results already logged")
            else:
                self.note(f"run {event.run_id} in {event.run_dir}")
        elif isinstance(event, CapReached):
            self.note(f"stopping: {event.message}")
        elif isinstance(event, InputWarning | CacheWarning):
            self.note(f"warning: {event.message}")
        elif isinstance(event, LogRecovered):
            self.note(f"log: a torn tail of {event.bad_bytes} bytes was moved to {event.side_file}")
        elif isinstance(event, RunFailed):
            self.note(f"error: {event.message}")
        elif isinstance(event, BatchJobSubmitted | BatchJobProgressed):
            self.note(f"batch {job_line(event.job)}")
        elif isinstance(event, BatchJobEnded):
            left = f", {event.unfinished} unfinished (pending)" if event.unfinished else ""
            self.note(f"batch {job_line(event.job)}: results in{left}")

    def _item_lane(self, item: str, lane: str, ok: bool) -> None:
        seen, all_ok = self._open.pop(item, (0, True))
        seen, all_ok = seen + (lane in self._last_step), all_ok and ok
        if seen < len(self._last_step):
            self._open[item] = (seen, all_ok)
        elif all_ok:
            self.items_ok += 1
        else:
            self.items_stopped += 1

    def note(self, text: str) -> None:
        if self._quiet:
            return
        self._clear()
        self.write(f"batchdeck: {text}\n")

    def write(self, text: str) -> None:
        """``text`` on stderr, or nothing from now on once stderr cannot be written."""
        if self._gone:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # EIO from a closed terminal, EPIPE, a closed stream
            self._gone = self._quiet = True
            self._live = False

    def _clear(self) -> None:
        if self._line_shown:
            self.write("\r\x1b[2K")
            self._line_shown = False

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        finished = self.already_done + self.done
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{_clock(elapsed)}"]
        calls = " calls" if self.lanes > 1 else ""
        if self.total:
            parts.append(f"{finished}/{self.total}{calls} ({100 * finished / self.total:.1f}%)")
            left = self.total - finished
            if rate > 0 and left > 0:
                parts.append(f"ETA {_clock(left / rate)}")
        else:
            parts.append(f"{finished}{calls} done")
        if self.lanes > 1:
            items = self.items_ok + self.items_stopped
            of = f"/{self.total // self.lanes}" if self.total else ""
            parts.append(f"{items}{of} items")
        parts.append(" ".join(f"{k} {v}" for k, v in self.counts.items() if v or k != "truncated"))
        parts.append(_spend(self.spent, self.unpriced))
        parts.append(f"{rate:.1f}/s")
        if self.retries:
            parts.append(f"{self.retries} retries")
        if self.throttled:
            parts.append(f"{self.throttled} throttled")
        return " | ".join(parts)

    async def ticker(self) -> None:
        if self._quiet:
            await anyio.sleep_forever()
        every = LIVE_EVERY_S if self._live else PLAIN_EVERY_S
        while True:
            await anyio.sleep(every)
            if self._live:
                self.write("\r\x1b[2K" + self.line())
                self._line_shown = True
            elif not self._quiet:
                self.write(self.line() + "\n")

    def summary(self, finished: RunFinished) -> str:
        self._clear()
        total = finished.ok + finished.failed + finished.skipped + finished.truncated

        def pct(count: int) -> str:
            return f"{100 * count / total:.1f}%" if total else "-"

        lines = [
            f"{_STATE_WORDS.get(finished.state, finished.state)} in {_clock(finished.elapsed_s)}: "
            + (
                self._items_and_calls(total + finished.remaining)
                if self.lanes > 1
                else _plural(total, "item")
            ),
            f"  ok       {finished.ok:>8}  {pct(finished.ok)}",
            f"  failed   {finished.failed:>8}  {pct(finished.failed)}",
            f"  skipped  {finished.skipped:>8}  {pct(finished.skipped)}",
        ]
        if self.lanes > 1:
            lines[1:1] = self._item_lines((total + finished.remaining) // self.lanes)
        if finished.truncated:
            lines.insert(
                2,
                f"  truncated{finished.truncated:>8}  {pct(finished.truncated)}"
                "  (cut off at --max-tokens: resume RUN --retry-failed --max-tokens N)",
            )
        if finished.remaining:
            lines.append(f"  not sent {finished.remaining:>8}  (resumable)")
        lines.append(
            f"  cost {_cost(finished)}   tokens {finished.input_tokens:,} in / "
            f"{finished.output_tokens:,} out"
        )
        if finished.cached:
            saved = finished.saved_usd
            shown = f"${saved:.2f}" if saved >= 1 else f"${saved:.4f}"
            lines.append(f"  {finished.cached:,} answers from the cache, {shown} not spent")
        if finished.cached_tokens or finished.cache_saved_usd:
            lines.append(
                f"  prompt cache {finished.cached_tokens:,} input tokens read from the "
                f"providers' caches, saving ${finished.cache_saved_usd:.4f}"
            )
        if finished.usage_unknown:
            lines.append(
                f"  {finished.usage_unknown} answers came without a usage that could be believed:"
                " each was charged all that was reserved for it"
            )
        if finished.batch_saved_usd:
            lines.append(
                f"  batch prices saved ${finished.batch_saved_usd:.4f} against the same calls "
                "online"
            )
        if finished.overspent_usd:
            lines.append(
                f"  --max-cost passed by ${finished.overspent_usd:.6f}: a provider billed more "
                "tokens than the requests allowed"
            )
        return "\n".join(lines)

    def _items_and_calls(self, calls: int) -> str:
        """The run's items and their calls (those not sent included: every item makes one
        call per lane)."""
        items = calls // self.lanes
        return (
            f"{_plural(items, 'item')}, {_plural(calls, 'call')} "
            f"({self.lanes} per item: one per model{' of each step' if self._steps else ''})"
        )

    def _item_lines(self, run_items: int) -> list[str]:
        """Items by outcome, then the calls' heading: an item stopped when any of its
        lanes did not end ok; unfinished ones have lanes left, and of a fresh run's items
        (``run_items``) some may not have started (both resumable)."""
        unfinished = sum(all_ok for _, all_ok in self._open.values())
        stopped = self.items_stopped + len(self._open) - unfinished
        items = self.items_ok + stopped + unfinished
        if not self.already_done:
            unfinished, items = unfinished + run_items - items, run_items

        def pct(count: int) -> str:
            return f"{100 * count / items:.1f}%" if items else "-"

        lines = [
            f"  items ok {self.items_ok:>8}  {pct(self.items_ok)}",
            f"  not all ok {stopped:>6}  {pct(stopped)}  (a call did not end ok: the export's "
            "error column says where)",
        ]
        if unfinished:
            lines.append(f"  unfinished {unfinished:>6}  {pct(unfinished)}  (resumable)")
        if self.already_done:
            lines.append("  (the items this execution finished: the rest were before it)")
        return [*lines, "  calls:"]


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


_STATE_WORDS = {
    "finished": "finished",
    "stopped": "stopped (resumable)",
    "capped": "stopped at a cap (resumable)",
    "failed": "failed",
}


def _cost(finished: RunFinished) -> str:
    """The run's cost; unknown for models with no price (never $0.0000)."""
    why = f" (no price for {', '.join(finished.unpriced)})"
    return _spend(finished.cost_usd, finished.unpriced, why)


def _spend(usd: float, unpriced: Collection[str], why: str = "") -> str:
    """Dollars spent, or ``unknown`` (plus what is known) when some model has no price."""
    if not unpriced:
        return f"${usd:.4f}"
    return f"${usd:.4f} + unknown{why}" if usd else f"unknown{why}"


def _clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def job_line(job: BatchJob, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    left = "-" if job.expires_at is None else _span(job.expires_at - now)
    return (
        f"{job.provider:<10} {job.job_id:<28} {job.state:<10} "
        f"{job.succeeded:>7} ok {job.errored:>6} err {job.processing:>7} left  "
        f"age {_span(now - job.submitted_at):>7}  expires in {left}"
    )


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
