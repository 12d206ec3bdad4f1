"""The stations registry in SQL (SQLAlchemy 2 async)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.stations.schemas import StationCreate, StationPublic
from dispatch.stations.tables import StationRow


class StationExistsError(Exception):
    """A station with this id is already registered."""

    def __init__(self, station_id: str) -> None:
        super().__init__(f"station {station_id!r} is already registered")
        self.station_id = station_id


class StationRegistry:
    """Create, read and list stations; tells a listener about new ones (route schedules)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        on_change: Callable[[StationPublic], object] | None = None,
    ) -> None:
        self._sessions = sessions
        self.on_change = on_change

    async def create(self, station: StationCreate) -> StationPublic:
        """Register a station; raises StationExistsError when the id is taken."""
        values = station.model_dump()
        for name in ("shift_start", "shift_end"):
            moment: time | None = values[name]
            values[name] = None if moment is None else moment.isoformat()
        row = StationRow(**values, created_at=datetime.now(UTC))
        async with self._sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                raise StationExistsError(station.id) from None
            public = StationPublic.model_validate(row)
        if self.on_change:
            self.on_change(public)
        return public

    async def get(self, station_id: str) -> StationPublic | None:
        """One station, or None."""
        async with self._sessions() as session:
            row = await session.get(StationRow, station_id)
            return StationPublic.model_validate(row) if row else None

    async def find(
        self,
        *,
        kind: str | None = None,
        district: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StationPublic]:
        """Stations ordered by id, optionally filtered."""
        query = select(StationRow).order_by(StationRow.id).limit(limit).offset(offset)
        if kind:
            query = query.where(StationRow.kind == kind)
        if district:
            query = query.where(StationRow.district == district)
        async with self._sessions() as session:
            return [StationPublic.model_validate(row) for row in await session.scalars(query)]
