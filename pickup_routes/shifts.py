"""Depot shifts in local time (WIB) as UTC instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from dispatch.stations.schemas import WIB


@dataclass(frozen=True, slots=True)
class Shift:
    """One shift of a depot: when crews leave and when they must be back (aware UTC)."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        """How long the shift lasts."""
        return self.end - self.start


def shift_on(day: datetime, start: time, end: time) -> Shift:
    """The shift that starts on the local (WIB) date of `day`."""
    local_day = day.astimezone(WIB).date()
    begin = datetime.combine(local_day, start, WIB)
    finish = datetime.combine(local_day, end, WIB)
    if finish <= begin:
        finish += timedelta(days=1)  # a night shift ends the next morning
    return Shift(begin.astimezone(UTC), finish.astimezone(UTC))


def upcoming_shift(start: time, end: time, now: datetime) -> Shift:
    """The shift in progress at `now`, else the next one to start."""
    for days in (-1, 0, 1):
        shift = shift_on(now + timedelta(days=days), start, end)
        if now < shift.end:
            return shift
    raise AssertionError("unreachable: a shift starts within every day")


def planning_time(start: time, lead: timedelta) -> time:
    """The local time of day at which a shift starting at `start` is planned."""
    moment = datetime.combine(datetime(2000, 1, 2).date(), start) - lead
    return moment.time()
