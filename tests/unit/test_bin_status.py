"""Bins' status in SQL (several ingest workers): upsert and read back, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.bins import BinStatus
from devices.bin_status import BinStatusStore
from tests.postgres import both_backends

pytestmark = both_backends

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


async def test_statuses_are_replaced_and_read_back_by_change_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = BinStatusStore(sessions)
    first = {f"bin-{i}": BinStatus(10.0 + i, 2.5, 30.0, 0, 1_000 + i) for i in range(1200)}
    await store.save(first, T0)  # more rows than one statement takes
    assert await store.changed_since(T0) == {}
    got = await store.changed_since(T0 - timedelta(seconds=1))
    assert got == first
    later = {"bin-7": BinStatus(95.0, None, None, 2, 9_000)}
    await store.save(later, T0 + timedelta(seconds=10))
    assert await store.changed_since(T0) == later
    everything = await store.changed_since(T0 - timedelta(days=1))
    assert len(everything) == 1200 and everything["bin-7"] == later["bin-7"]


async def test_nothing_to_save_is_fine(sessions: async_sessionmaker[AsyncSession]) -> None:
    store = BinStatusStore(sessions)
    await store.save({}, T0)
    assert await store.changed_since(T0 - timedelta(days=1)) == {}
