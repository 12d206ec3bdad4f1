"""The device registry in SQL (SQLAlchemy 2 async)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.schemas import DeviceCreate, DevicePublic
from devices.tables import DeviceRow


class DeviceExistsError(Exception):
    """A device with this id is already registered."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} is already registered")
        self.device_id = device_id


class DeviceRegistry:
    """Create, read and list registered devices; tells listeners about new ones."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        on_change: Callable[[DevicePublic], object] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change

    async def create(self, device: DeviceCreate) -> DevicePublic:
        """Register a device; raises DeviceExistsError when the id is taken."""
        row = DeviceRow(**device.model_dump(), created_at=datetime.now(UTC))
        async with self._sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                raise DeviceExistsError(device.id) from None
            public = DevicePublic.model_validate(row)
        if self._on_change:
            self._on_change(public)
        return public

    async def get(self, device_id: str) -> DevicePublic | None:
        """One device, or None."""
        async with self._sessions() as session:
            row = await session.get(DeviceRow, device_id)
            return DevicePublic.model_validate(row) if row else None

    async def get_many(self, device_ids: Collection[str]) -> list[DevicePublic]:
        """The registered devices among the given ids."""
        if not device_ids:
            return []
        async with self._sessions() as session:
            rows = await session.scalars(select(DeviceRow).where(DeviceRow.id.in_(device_ids)))
            return [DevicePublic.model_validate(row) for row in rows]

    async def find(
        self,
        *,
        kind: str | None = None,
        district: str | None = None,
        zone: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DevicePublic]:
        """Devices ordered by id, optionally filtered."""
        query = select(DeviceRow).order_by(DeviceRow.id).limit(limit).offset(offset)
        if kind:
            query = query.where(DeviceRow.kind == kind)
        if district:
            query = query.where(DeviceRow.district == district)
        if zone:
            query = query.where(DeviceRow.zone == zone)
        async with self._sessions() as session:
            return [DevicePublic.model_validate(row) for row in await session.scalars(query)]

    async def all(self) -> list[DevicePublic]:
        """Every registered device (to warm ingest's directory at start)."""
        async with self._sessions() as session:
            rows = await session.scalars(select(DeviceRow))
            return [DevicePublic.model_validate(row) for row in rows]

    async def mark_seen(self, seen: Mapping[str, datetime]) -> None:
        """Record when devices last reported (batched: one statement per call)."""
        if not seen:
            return
        async with self._sessions() as session:
            await session.execute(
                update(DeviceRow),
                [{"id": device_id, "last_seen_at": at} for device_id, at in seen.items()],
            )
            await session.commit()
