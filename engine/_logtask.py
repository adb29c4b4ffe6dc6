"""The group-commit log task: results in, one write (and fsync) per group, then events out.

Workers and the dispatcher send results down one stream; this task commits
whatever has arrived as one group and only then hands the group on
(``committed``): what anyone saw finish is on disk. Pause/resume records are
queued with ``note`` and go out with the next group. A record that must follow
results already sent (a batch job's ``closed``: resume fetches no more of a closed
job, so a result behind it would be paid for again) goes down the results stream
itself, wrapped by ``in_order``: the stream is first in, first out, so it is written
with those results or after them, never before.

It is never cancelled by stop or abort, and what it holds when the execution is
cancelled from outside is still committed, under a shield that has a deadline:
a disk that stopped answering (a hung fsync on a dead network mount) must not
freeze the process's way out. A write that misses the deadline is abandoned in
its thread and the run fails; its items run again on resume.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine import log
from engine._budget import Funds, to_usd
from engine._errors import LogWriteError
from engine._results import ItemResult

GROUP_MAX = 1024
"""Most records committed in one write()+fsync."""
GROUP_TARGET = 200
GROUP_INTERVAL_S = 0.05
QUIET_S = 0.005
"""A group is committed once it has GROUP_TARGET records, its first record waited
GROUP_INTERVAL_S, or no record came for QUIET_S: a result waits for company only while
others are coming. Waiting the whole interval for none kept every answered row
``running`` (and out of the counts) for 50 ms more than its write took."""
RESULT_BUFFER = 4096
WRITE_DEADLINE_S = 30.0
"""Longest a shielded write may take before the run gives up on the disk."""

ResultSend = MemoryObjectSendStream[ItemResult]

_WAKE: Any = object()
"""Sent down the results stream to wake an idle log task for a queued record."""


@dataclass(frozen=True, slots=True)
class _InOrder:
    record: dict[str, Any]


def in_order(record: dict[str, Any]) -> ItemResult:
    """``record`` as an entry of the results stream (typed as one of its results, as
    ``_WAKE`` is): written after every result sent down the stream before it."""
    return cast(ItemResult, _InOrder(record))


class LogTask:
    def __init__(
        self,
        writer: log.LogWriter,
        committed: Callable[[list[ItemResult]], None],
        fail: Callable[[str], None],
    ) -> None:
        self._writer = writer
        self._committed = committed
        self._fail = fail
        self._notes: list[dict[str, Any]] = []
        self._notes_written: list[anyio.Event] = []
        """Set once the notes queued so far are on disk (or the log broke)."""
        self.funds: Funds | None = None
        """Whose spending bound each group carries (``Funds.hold_wanted``)."""
        self._wake: ResultSend | None = None
        self._late: str | None = None
        """Set when a write missed its deadline: nothing more is written."""

    def open(self) -> tuple[ResultSend, MemoryObjectReceiveStream[ItemResult]]:
        """The results stream: send results to the first, pass the second to ``run``."""
        send, recv = anyio.create_memory_object_stream[ItemResult](RESULT_BUFFER)
        self._wake = send
        return send, recv

    def note(self, record: dict[str, Any]) -> None:
        """Queue a record for the next group, in order with the results."""
        self._notes.append(record)
        self.urge()

    async def write_now(self, record: dict[str, Any]) -> bool:
        """Queue ``record`` for the next group and return once that group is on disk
        (fsynced under ``durability="fsync"``); False when the log broke first."""
        written = anyio.Event()
        self._notes.append(record)
        self._notes_written.append(written)
        self.urge()
        await written.wait()
        return not (self._writer.broken or self._late is not None)

    def urge(self) -> None:
        """Wake an idle log task: something is queued, or a call waits for its bound."""
        if self._wake is not None:
            with suppress(anyio.WouldBlock, anyio.ClosedResourceError):
                self._wake.send_nowait(_WAKE)

    async def run(self, results: MemoryObjectReceiveStream[ItemResult]) -> None:
        async with results:
            while True:
                try:
                    group = [await results.receive()]
                except anyio.EndOfStream:
                    return
                try:
                    await _fill(group, results, self._urgent)
                finally:  # cancelled while filling: what arrived is still committed
                    with anyio.move_on_after(WRITE_DEADLINE_S, shield=True) as scope:
                        await self._commit(group)
                    if scope.cancelled_caught:
                        self._give_up()

    async def _commit(self, group: list[ItemResult]) -> None:
        """One write (and fsync) for the group, then hand it on: seen means on disk.

        After a failed write nothing more is written (the run is stopping): those
        results are dropped and their items run again on resume."""
        written, self._notes_written = self._notes_written, []
        try:
            await self._write(group)
        finally:
            for event in written:
                event.set()

    async def _write(self, group: list[ItemResult]) -> None:
        if self._writer.broken or self._late is not None:
            return
        entries: list[Any] = [entry for entry in group if entry is not _WAKE]
        ordered = [entry.record for entry in entries if isinstance(entry, _InOrder)]
        if ordered:
            entries = [entry for entry in entries if not isinstance(entry, _InOrder)]
        group = entries
        lines = [log.encode(log.result_record(r)) for r in group]
        lines += [log.encode(record) for record in self._notes]  # queued before: they go first
        lines += [log.encode(record) for record in ordered]
        self._notes.clear()
        bound = None if self.funds is None else self.funds.hold_wanted()
        if bound is not None:
            lines.append(log.encode(log.hold_record(to_usd(bound))))
        try:
            await anyio.to_thread.run_sync(self._writer.write_group, lines, abandon_on_cancel=True)
        except LogWriteError as exc:
            self._fail(str(exc))
            return
        if bound is not None and self.funds is not None:
            self.funds.held(bound)
        self._committed(group)

    def _urgent(self) -> bool:
        """A call waits for a new bound, or a record for its write: commit what is there now,
        not at the interval."""
        return bool(self._notes_written) or (self.funds is not None and self.funds.waiting_durable)

    async def close(self, last: dict[str, Any]) -> str | None:
        """Write the queued records and ``last`` at once, fsynced; the error, if that failed."""
        if self._late is not None:
            return self._late
        lines = [log.encode(r) for r in self._notes]
        lines.append(log.encode(last))
        self._notes.clear()
        with anyio.move_on_after(WRITE_DEADLINE_S, shield=True):
            try:
                await anyio.to_thread.run_sync(
                    self._writer.write_now, b"".join(lines), abandon_on_cancel=True
                )
            except LogWriteError as exc:
                return str(exc)
            return None
        return self._give_up()

    def _give_up(self) -> str:
        """A write hung past its deadline: leave it to its thread, write nothing more, fail."""
        path = self._writer.path
        self._late = f"checkpoint log {path}: a write did not finish within {WRITE_DEADLINE_S:g}s"
        self._fail(self._late)
        return self._late


async def _fill(
    group: list[ItemResult],
    results: MemoryObjectReceiveStream[ItemResult],
    urgent: Callable[[], bool],
) -> None:
    """Add to ``group`` what arrives within the group interval, up to GROUP_MAX records,
    until none comes for ``QUIET_S``; less as soon as ``urgent()``."""
    deadline = anyio.current_time() + GROUP_INTERVAL_S
    while len(group) < GROUP_MAX and not urgent():
        try:
            group.append(results.receive_nowait())
            continue
        except anyio.EndOfStream:
            return
        except anyio.WouldBlock:
            pass
        if len(group) >= GROUP_TARGET:
            return
        with anyio.move_on_after(min(QUIET_S, deadline - anyio.current_time())) as waited:
            try:
                group.append(await results.receive())
            except anyio.EndOfStream:
                return
        if waited.cancelled_caught:
            return
