"""Bins' fill status in SQL, for processes that do not hold the bins' rule state.

With several ingest workers, each bin's fill history lives in the worker that owns it
(ingest/partition.py), but the API and the route planner run in `sigap up`. Workers save
the status of the bins that reported (every few seconds, with their last-seen times);
the API process reads what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.bins import BinStatus
from devices.tables import BinStatusRow

_CHUNK = 500  # rows per statement: short transactions, and under SQLite's variable limit


class BinStatusStore:
    """Upserts and reads bin statuses (SQLite and PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(self, statuses: Mapping[str, BinStatus], at: datetime) -> None:
        """Insert or replace these bins' statuses, stamped `at`."""
        rows = [
            {
                "device_id": device_id,
                "fill_pct": s.fill_pct,
                "rate_pct_per_h": s.rate_pct_per_h,
                "hours_to_full": s.hours_to_full,
                "level": s.level,
                "reading_ts_ms": s.reading_ts_ms,
                "updated_at": at,
            }
            for device_id, s in statuses.items()
        ]
        for first in range(0, len(rows), _CHUNK):
            chunk = rows[first : first + _CHUNK]
            async with self._sessions() as session:
                dialect = session.get_bind().dialect.name
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                statement = insert(BinStatusRow).values(chunk)
                excluded = statement.excluded
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[BinStatusRow.device_id],
                        set_={
                            name: getattr(excluded, name)
                            for name in chunk[0]
                            if name != "device_id"
                        },
                    )
                )
                await session.commit()

    async def changed_since(self, since: datetime) -> dict[str, BinStatus]:
        """Statuses saved after `since`, by bin id."""
        query = select(BinStatusRow).where(BinStatusRow.updated_at > since)
        async with self._sessions() as session:
            return {
                row.device_id: BinStatus(
                    row.fill_pct,
                    row.rate_pct_per_h,
                    row.hours_to_full,
                    row.level,
                    row.reading_ts_ms,
                )
                for row in await session.scalars(query)
            }
