"""Which devices changed since a moment: what ingest workers poll every few seconds."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.readings import DeviceKind
from devices.registry import DeviceRegistry, changed_since_query
from devices.schemas import DeviceCreate, DeviceUpdate
from tests.postgres import both_backends


def bin_(i: int) -> DeviceCreate:
    """A bin near Sampit's market."""
    return DeviceCreate(
        id=f"bin-{i:03d}", kind=DeviceKind.bin, lat=-2.54 + i * 1e-4, lon=112.95, depth_mm=1000.0
    )


@both_backends
async def test_registered_and_changed_devices_are_found_and_nothing_else(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    registry = DeviceRegistry(sessions)
    created = await registry.create_many([bin_(i) for i in range(3)])
    # (Each later write is a round trip to the database: its time is later than this.)
    mark = max(d.created_at for d in created)
    assert await registry.changed_since(mark) == []
    await registry.update("bin-001", DeviceUpdate(name="Pasar Mentaya"))
    await registry.create(bin_(7))
    changed = await registry.changed_since(mark)
    assert sorted(d.id for d in changed) == ["bin-001", "bin-007"]
    assert next(d for d in changed if d.id == "bin-001").name == "Pasar Mentaya"


async def test_the_query_uses_the_time_indexes_not_a_scan_of_the_fleet(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # SQLite's plan; a fleet of a million devices is polled like this every few seconds.
    query = changed_since_query(datetime.now(UTC)).compile()
    async with sessions() as session:
        explained = await session.execute(text(f"EXPLAIN QUERY PLAN {query}"), query.params)
        plan = [str(row[-1]) for row in explained]
    assert not any(step.startswith("SCAN devices") for step in plan), plan
    assert any("ix_devices_created_at" in step for step in plan), plan
    assert any("ix_devices_updated_at" in step for step in plan), plan
