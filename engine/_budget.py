"""Hard money caps: reserve the worst case before a call, settle the real cost after.

Amounts are held as integer pico-dollars so the check ``spent + reserved + next
<= cap`` is exact: float sums drift, and a cap that is overshot by one ulp is
still overshot. Reservations round up and real costs round to nearest, so as
long as a call costs no more than its worst case, spent never passes the cap.

One dispatcher reserves and workers settle, all on one event loop with no
await inside a method: no lock is needed. ``Funds`` adds the one wait there is:
the dispatcher's, for money that calls in flight will give back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import anyio

_UNITS = 10**12


def to_units_up(usd: float) -> int:
    return math.ceil(usd * _UNITS)


def to_units(usd: float) -> int:
    return round(usd * _UNITS)


@dataclass(slots=True)
class Budget:
    cap_units: int | None
    spent_units: int = 0
    reserved_units: int = 0

    @classmethod
    def create(cls, cap_usd: float | None, spent_usd: float = 0.0) -> Budget:
        cap = None if cap_usd is None else math.floor(cap_usd * _UNITS)
        return cls(cap, to_units(spent_usd))

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

    def try_reserve(self, units: int) -> bool:
        if self.cap_units is not None and (
            self.spent_units + self.reserved_units + units > self.cap_units
        ):
            return False
        self.reserved_units += units
        return True

    def settle(self, reserved_units: int, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost."""
        self.reserved_units -= reserved_units
        self.spent_units += to_units(actual_usd)


class Funds:
    """The budget as an execution's tasks share it: whoever settles wakes whoever waits.

    The dispatcher waits in ``hold`` for calls in flight to give money back;
    workers ``settle`` (and reserve again for a paid retry, without waiting).
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._settled = anyio.Event()

    def try_reserve(self, units: int) -> bool:
        return self.budget.try_reserve(units)

    def settle(self, reserved_units: int, actual_usd: float) -> None:
        self.budget.settle(reserved_units, actual_usd)
        self._settled.set()

    async def hold(self, units: int) -> bool:
        """Reserve ``units``, waiting for calls in flight to settle; False if it can never fit."""
        budget = self.budget
        while budget.fits_ever(units):
            if budget.try_reserve(units):
                return True
            if self._settled.is_set():
                self._settled = anyio.Event()
            await self._settled.wait()
        return False
