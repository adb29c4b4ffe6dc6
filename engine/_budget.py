"""Hard money caps: reserve the worst case before a call, settle the real cost after.

Amounts are held as integer pico-dollars so the check ``spent + reserved + next
<= cap`` is exact: float sums drift, and a cap that is overshot by one ulp is
still overshot. Reservations round up and real costs round to nearest, so as
long as a call costs no more than its worst case, spent never passes the cap.

What a provider says a call cost is not trusted further than that: an unknown
or unreadable cost is charged the whole reservation, so what is recorded never
goes down and never stops counting; a cost above the reservation (a provider
billing past ``max_tokens``) is recorded as it is, and ``overspent_units`` says
by how much the cap was passed.

One dispatcher reserves and workers settle, all on one event loop with no
await inside a method: no lock is needed. ``Funds`` adds the one wait there is:
the dispatcher's, for money that calls in flight will give back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import anyio

_UNITS = 10**12
_MOST_USD = 1e12
CAPPED_HEADROOM = 64
"""Under a cost cap a spending bound runs ahead of need by at most 1/64 of what is left."""


def to_units_up(usd: float) -> int:
    return math.ceil(usd * _UNITS)


def to_units(usd: float) -> int:
    return round(usd * _UNITS)


def to_usd(units: int) -> float:
    return units / _UNITS


def usd(amount: float) -> str:
    """A dollar amount a user gave (a cap) as they would write it: ``$5``, ``$0.25``,
    ``$0.000001`` (never ``$1e-06``), to the engine's pico-dollar."""
    return "$" + (f"{amount:.12f}".rstrip("0").rstrip(".") or "0")


@dataclass(slots=True)
class Budget:
    cap_units: int | None
    spent_units: int = 0
    reserved_units: int = 0
    start_units: int = 0
    """What was spent before this execution (its log's word)."""

    @classmethod
    def create(cls, cap_usd: float | None, spent_usd: float = 0.0) -> Budget:
        cap = None if cap_usd is None else math.floor(cap_usd * _UNITS)
        # What a log says was spent is believed up to a trillion dollars (NaN: all of it).
        spent = _MOST_USD if not spent_usd < _MOST_USD else max(spent_usd, 0.0)
        return cls(cap, to_units(spent), start_units=to_units(spent))

    @property
    def spent_usd(self) -> float:
        return self.spent_units / _UNITS

    @property
    def reserved_usd(self) -> float:
        return self.reserved_units / _UNITS

    @property
    def cap_usd(self) -> float | None:
        return None if self.cap_units is None else self.cap_units / _UNITS

    def fits_ever(self, units: int) -> bool:
        """Could this reservation fit once every call in flight has settled at no cost?"""
        return self.cap_units is None or self.spent_units + units <= self.cap_units

    def carry(self, units: int) -> None:
        """Hold what batch jobs submitted before this execution may still cost: they were
        within the cap when they were submitted, and are settled as their results arrive."""
        self.reserved_units += units

    def try_reserve(self, units: int) -> bool:
        if self.cap_units is not None and (
            self.spent_units + self.reserved_units + units > self.cap_units
        ):
            return False
        self.reserved_units += units
        return True

    @property
    def reached(self) -> bool:
        """Spending alone is at the cap: nothing more may be sent."""
        return self.cap_units is not None and self.spent_units >= self.cap_units

    @property
    def overspent_units(self) -> int:
        """How far this execution's spending went past the cap (only a provider billing past
        its limits can); a cap lowered below what was spent before is not passed by it."""
        if self.cap_units is None:
            return 0
        return max(0, self.spent_units - max(self.cap_units, self.start_units))

    def settle(self, reserved_units: int, actual_usd: float | None) -> int:
        """Replace a reservation by what the call cost, and return the units charged.

        ``None`` (the cost is unknown) and anything but a finite, non-negative
        amount are charged the whole reservation."""
        self.reserved_units -= reserved_units
        sane = actual_usd is not None and math.isfinite(actual_usd) and actual_usd >= 0
        charged = to_units(actual_usd) if sane else reserved_units  # type: ignore[arg-type]
        self.spent_units += charged
        return charged


def cap_reached(budget: Budget, model: str, charged: int, reserved: int) -> str | None:
    """What to say once spending alone reached the cap, after ``model`` was charged
    ``charged`` for a call whose worst case was ``reserved``; None while it has not."""
    if not budget.reached:
        return None
    assert budget.cap_units is not None
    cap = to_usd(budget.cap_units)
    if not budget.overspent_units:
        return f"--max-cost {usd(cap)} reached"
    return (
        f"--max-cost {usd(cap)} passed by ${to_usd(budget.overspent_units):.6f}: "
        f"{model} billed ${to_usd(charged):.6f} for a call whose worst case was "
        f"${to_usd(reserved):.6f} (more tokens than the request allowed)"
    )


class Funds:
    """The budget as an execution's tasks share it, and the durable bound on what it spent.

    Settling wakes whoever waits to reserve. A paid item's next attempt reserves
    before any new item does (``hold_retry``): the dispatcher waits while one is
    waiting. A retry waits only while calls in flight may still give money back;
    when none is left in flight it gives up, so workers never wait for money held
    by items only a worker could run.

    Spend is durable before a call is sent. The log holds a ``hold`` record: the
    most the run may have spent once the calls it sent settle. A call is sent only
    once the bound on disk covers what was spent plus the reservations of every
    call sent or about to be (``expose``); the log task writes a new bound with a
    group it commits anyway (``hold_wanted`` / ``held``), ahead of need by about
    four groups' worth of spending, so workers rarely wait and many calls share one
    fsync. After a kill, resume counts the last bound as spent unless the log holds
    the settled costs: what that overcounts is what the calls in flight did not
    use of their reservations, plus the headroom of one bound, which under a cost
    cap is at most 1/CAPPED_HEADROOM of what is left (or one reservation).
    """

    HEADROOM_RESERVATIONS = 64
    """The smallest headroom a new bound gets, in reservations of the largest size seen."""

    def __init__(self, budget: Budget, urge: Callable[[], None] = lambda: None) -> None:
        self.budget = budget
        self._settled = anyio.Event()
        self._retries_waiting = 0
        self.calls_in_flight = 0
        self.exposed_units = 0
        """Reservations of calls sent, or waiting for the log's bound to be sent."""
        self.batched_units = 0
        """Reservations of requests in batch jobs at their provider."""
        self._urge = urge
        self.durable_units = budget.spent_units
        """The bound on spending that the log holds (what it says was spent, at first)."""
        self._durable = anyio.Event()
        self._needed = 0
        self._largest = 0
        self._at_last_hold = self.budget.spent_units

    def settle(self, reserved_units: int, actual_usd: float | None, *, sent: bool) -> int:
        """Replace a reservation by what its call cost (``Budget.settle``); ``sent``: it was
        exposed (``expose``), so it no longer is."""
        charged = self.budget.settle(reserved_units, actual_usd)
        if sent:
            self.exposed_units -= reserved_units
        self._settled.set()
        return charged

    def batched(self, units: int) -> None:
        """Reservations of ``units`` went to a provider in a batch job: held until
        ``settle_batched`` replaces them by what their results cost."""
        self.batched_units += units
        self._settled.set()  # a hold waiting for money looks again (``hold``'s ``in_vain``)

    def settle_batched(self, reserved_units: int, actual_usd: float | None) -> int:
        """``settle`` for a request of a batch job (its result came, or it gave none)."""
        self.batched_units -= reserved_units
        return self.settle(reserved_units, actual_usd, sent=False)

    async def hold(self, units: int, in_vain: Callable[[], bool] = lambda: False) -> bool:
        """Reserve a new item's ``units``, after any waiting retry, waiting for calls in flight
        to settle; False if it can never fit, or when waiting is ``in_vain`` (nothing that
        holds money can give it back in this execution)."""
        budget = self.budget
        while budget.fits_ever(units):
            if not self._retries_waiting and budget.try_reserve(units):
                return True
            if in_vain():
                return False
            await self._next_settle()
        return False

    def fits_now(self, units: int) -> bool:
        """Would ``hold`` reserve ``units`` without waiting?"""
        budget = self.budget
        return not self._retries_waiting and (
            budget.cap_units is None
            or budget.spent_units + budget.reserved_units + units <= budget.cap_units
        )

    async def hold_retry(self, units: int) -> bool:
        """Reserve a paid item's next attempt: before new items, waiting only while calls in
        flight may give money back; False when it cannot be had."""
        budget = self.budget
        self._retries_waiting += 1
        try:
            while not budget.try_reserve(units):
                if not self.calls_in_flight or not budget.fits_ever(units):
                    return False
                await self._next_settle()
            return True
        finally:
            self._retries_waiting -= 1
            self._settled.set()  # the dispatcher may go on

    async def _next_settle(self) -> None:
        if self._settled.is_set():
            self._settled = anyio.Event()
        await self._settled.wait()

    async def expose(self, units: int) -> None:
        """The call holding ``units`` is to be sent: return once the log's bound covers it
        (and every other call sent). Settle it with ``sent=True`` after."""
        if not units:
            return  # a free call puts nothing at risk
        self.exposed_units += units
        self._largest = max(self._largest, units)
        need = self.budget.spent_units + self.exposed_units
        try:
            while self.durable_units < need:
                self._needed = max(self._needed, need)
                if self._durable.is_set():
                    self._durable = anyio.Event()
                self._urge()
                await self._durable.wait()
        except BaseException:
            self.exposed_units -= units
            raise

    def unexpose(self, units: int) -> None:
        """The call holding ``units`` ended unbilled; its reservation is kept."""
        self.exposed_units -= units

    @property
    def waiting_durable(self) -> bool:
        return self._needed > self.durable_units

    def hold_wanted(self) -> int | None:
        """The bound the log should hold next, or None when the one it holds is enough."""
        exposed = self.budget.spent_units + self.exposed_units
        least = self.HEADROOM_RESERVATIONS * self._largest
        headroom = max(4 * (exposed - self._at_last_hold), least)
        self._at_last_hold = exposed
        cap = self.budget.cap_units
        if cap is not None:  # a kill must not cost much of what is left
            headroom = min(headroom, max(self._largest, (cap - exposed) // CAPPED_HEADROOM))
        if exposed + headroom // 2 <= self.durable_units and self._needed <= self.durable_units:
            return None
        upto = max(exposed + headroom, self._needed)
        if cap is not None:  # never past the cap, which only over-billing spends past
            upto = min(upto, max(cap, self._needed))
        return upto if upto > self.durable_units else None

    def held(self, upto: int) -> None:
        """The log holds ``upto`` on disk now."""
        self.durable_units = max(self.durable_units, upto)
        self._durable.set()
