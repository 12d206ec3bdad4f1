"""Which bins a plan takes (full, predicted full before the window ends; never burning),
expected fill at a visit, and depot shifts in WIB."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from contract.bins import BinStatus
from pickup_routes.selection import BinFacts, Excluded, Why, fill_at, select_bins
from pickup_routes.shifts import planning_time, upcoming_shift

H = 3_600_000
NOW = 1_795_000_000_000  # epoch ms
WINDOW_END = NOW + 8 * H


def facts(id_: str, status: BinStatus | None, **changes: object) -> BinFacts:
    return BinFacts(id_, -2.5, 112.9, status, **changes)  # type: ignore[arg-type]


def status(fill: float, rate: float | None, hours: float | None, level: int = 0) -> BinStatus:
    return BinStatus(fill, rate, hours, level, NOW)


def test_selection() -> None:
    bins = [
        facts("full", status(93, 1.0, 0.0, level=2)),
        facts("full-by-hysteresis", status(85, None, None, level=2)),  # still a full alert
        facts("at-full", status(90, None, 0.0, level=1)),  # full, level not confirmed yet
        facts("soon", status(70, 5.0, 4.0)),  # full in 4 h, window ends in 8
        facts("just-in", status(50, 5.0, 8.0)),
        facts("too-late", status(50, 4.0, 10.0)),
        facts("not-filling", status(60, 0.0, None)),
        facts("silent", None),
        facts("silent-but-alerted", None, full_alert=True),
        facts("burning", status(99, 3.0, 0.0, level=2), burning=True),
        facts("burning-soon", status(70, 5.0, 4.0), burning=True),
        facts("on-route", status(95, 1.0, 0.0, level=2), on_route=7),
    ]
    selection = select_bins(bins, WINDOW_END)
    assert {(c.bin.id, c.why) for c in selection.chosen} == {
        ("full", Why.full),
        ("full-by-hysteresis", Why.full),
        ("at-full", Why.full),
        ("soon", Why.predicted_full),
        ("just-in", Why.predicted_full),
        ("silent-but-alerted", Why.full),
    }
    assert {(f.id, why) for f, why in selection.excluded} == {
        ("too-late", Excluded.not_due),
        ("not-filling", Excluded.not_due),
        ("silent", Excluded.no_reading),
        ("burning", Excluded.burning),
        ("burning-soon", Excluded.burning),
        ("on-route", Excluded.on_route),
    }
    soon = next(c for c in selection.chosen if c.bin.id == "soon")
    assert soon.full_at_ms == NOW + 4 * H


def test_a_longer_window_takes_more_bins() -> None:
    later = facts("later", status(50, 4.0, 10.0))
    assert select_bins([later], NOW + 8 * H).chosen == []
    assert [c.bin.id for c in select_bins([later], NOW + 24 * H).chosen] == ["later"]


def test_fill_at_a_visit() -> None:
    filling = status(60, 5.0, 6.0)
    assert fill_at(filling, NOW) == 60
    assert fill_at(filling, NOW + 2 * H) == pytest.approx(70)
    assert fill_at(filling, NOW + 20 * H) == 100  # a bin holds no more than itself
    assert fill_at(status(60, None, None), NOW + 5 * H) == 60
    assert fill_at(status(60, -3.0, None), NOW + 5 * H) == 60  # noise, not emptying
    assert fill_at(None, NOW) == 100  # unknown but alerted full: plan for a full bin


WIB_5AM = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 2026-11-27 05:00 WIB


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        # Before the 06:00-14:00 WIB shift: today's.
        (WIB_5AM, "2026-11-26T23:00", "2026-11-27T07:00"),
        # During it: still today's.
        (WIB_5AM + timedelta(hours=4), "2026-11-26T23:00", "2026-11-27T07:00"),
        # After it: tomorrow's.
        (WIB_5AM + timedelta(hours=10), "2026-11-27T23:00", "2026-11-28T07:00"),
    ],
)
def test_upcoming_day_shift(now: datetime, start: str, end: str) -> None:
    shift = upcoming_shift(time(6), time(14), now)
    assert shift.start == datetime.fromisoformat(start + "+00:00")
    assert shift.end == datetime.fromisoformat(end + "+00:00")
    assert shift.length == timedelta(hours=8)


def test_night_shift_crosses_midnight() -> None:
    # 22:00-04:00 WIB; at 01:00 WIB the shift that began yesterday evening is running.
    one_am = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
    shift = upcoming_shift(time(22), time(4), one_am)
    assert shift.start == datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    assert shift.end == datetime(2026, 11, 26, 21, 0, tzinfo=UTC)


def test_planning_time_wraps_midnight() -> None:
    assert planning_time(time(6), timedelta(minutes=30)) == time(5, 30)
    assert planning_time(time(0, 15), timedelta(minutes=30)) == time(23, 45)
