"""``--max-item-cost`` over an item's calls together: what each item has committed so far.

An item makes one call per lane (one model; or several models, steps, a judge, a
debate's two rounds), and the cap is on their sum, retries included, one lane or
many: each call is sent only if its worst case fits in what the item has not yet
committed (``room``), where an item has committed the worst case of each of its
calls not yet settled and the real cost of each attempt that was paid. So the item's
total can never pass the cap, whatever the calls really cost, while calls of the same
step still go at once.

A call that does not fit gets a lower output limit that does, or is skipped
(``budget``); in a pipeline the item then stops at that step.

On resume (``--retry-failed`` too), what an item's results already cost and its paid
attempts a kill left without a result (``before``, from the log) count against its
cap: one rule whatever the run's shape. Everything here is plain state used from the
event loop's one thread.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine._budget import to_units_up, to_usd, usd
from engine._prices import Price


class ItemCap:
    def __init__(self, cap_units: int, before: Mapping[str, int] | None = None) -> None:
        self.cap_units = cap_units
        self._before = dict(before or {})
        """Units the log says each unfinished item's results cost (taken when it starts)."""
        self._used: dict[str, int] = {}
        self._open: dict[str, int] = {}
        """Calls of each item that hold a reservation and have not ended."""
        self._sealed: set[str] = set()

    def room(self, item_id: str) -> int:
        """Units the item may still commit."""
        return self.cap_units - self.used(item_id)

    def used(self, item_id: str) -> int:
        used = self._used.get(item_id)
        if used is None:
            used = self._used[item_id] = self._before.pop(item_id, 0)
        return used

    def open(self, item_id: str, units: int) -> None:
        """A call of the item reserved ``units`` (its worst case)."""
        self._used[item_id] = self.used(item_id) + units
        self._open[item_id] = self._open.get(item_id, 0) + 1

    def settle(self, item_id: str, reserved: int, charged: int) -> None:
        """An attempt that held ``reserved`` was charged ``charged`` (0 when it was not sent);
        a retry that reserves again passes ``reserved=0``."""
        if item_id in self._used:
            self._used[item_id] += charged - reserved

    def close(self, item_id: str, reserved: int = 0, charged: int = 0) -> None:
        """A call of the item ended (``settle`` what it still held)."""
        self.settle(item_id, reserved, charged)
        left = self._open.get(item_id, 0) - 1
        if left > 0:
            self._open[item_id] = left
            return
        self._open.pop(item_id, None)
        if item_id in self._sealed:
            self._forget(item_id)

    def seal(self, item_id: str) -> None:
        """The item will open no more calls: it is forgotten once those open have ended."""
        if self._open.get(item_id):
            self._sealed.add(item_id)
        else:
            self._forget(item_id)

    def _forget(self, item_id: str) -> None:
        self._sealed.discard(item_id)
        self._used.pop(item_id, None)
        self._before.pop(item_id, None)


def fit(
    price: Price, bound: int, max_tokens: int, answers: int, room: int, room_usd: float
) -> tuple[int, int] | None:
    """The output limit (at most ``max_tokens``) and worst case in units of a call with an
    input bound of ``bound`` tokens that fits in ``room`` units (``room_usd``); None if not
    even one output token does."""
    units = to_units_up(price.worst_case(bound, max_tokens * answers))
    if units <= room:
        return max_tokens, units
    max_tokens = min(max_tokens, price.output_tokens_within(room_usd, bound) // answers)
    units = to_units_up(price.worst_case(bound, max_tokens * answers))
    return None if max_tokens < 1 or units > room else (max_tokens, units)


def too_dear(cap_usd: float, used_units: int, prompt_alone: float) -> str:
    """Why a call of an item was not sent: its prompt alone does not fit in what the item's
    other calls (``used_units``) left of the cap."""
    if not used_units:
        return f"its prompt alone may cost ${prompt_alone:.6f}, over --max-item-cost {usd(cap_usd)}"
    return (
        f"--max-item-cost {usd(cap_usd)}: the item's other calls took ${to_usd(used_units):.6f} "
        f"and this one's prompt alone may cost ${prompt_alone:.6f}"
    )
