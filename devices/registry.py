"""The device and gateway registry in SQL (SQLAlchemy 2 async)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Select, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.schemas import (
    DeviceCreate,
    DevicePublic,
    DeviceStatus,
    DeviceUpdate,
    GatewayCreate,
    GatewayKind,
    GatewayPublic,
    GatewayStatus,
    GatewayUpdate,
)
from devices.tables import DeviceRow, GatewayRow


class RegistryError(Exception):
    """A registry operation that cannot be done as asked."""


class DeviceExistsError(RegistryError):
    """A device with this id is already registered."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} is already registered")
        self.device_id = device_id


class NsDeviceTakenError(RegistryError):
    """Another device is registered with this network server id."""

    def __init__(self, network_server: str, ns_device_id: str, owner: str) -> None:
        super().__init__(
            f"ns_device_id {ns_device_id!r} on {network_server} is already registered "
            f"as device {owner!r}"
        )
        self.network_server = network_server
        self.ns_device_id = ns_device_id
        self.owner = owner


class NotFoundError(RegistryError):
    """No device or gateway with this id."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} is not registered")
        self.ident = ident


class GatewayExistsError(RegistryError):
    """A gateway with this id is already registered."""

    def __init__(self, gateway_id: str) -> None:
        super().__init__(f"gateway {gateway_id!r} is already registered")
        self.gateway_id = gateway_id


class GatewayInUseError(RegistryError):
    """The gateway change would strand devices registered behind it."""

    def __init__(self, gateway_id: str, action: str, device_ids: Sequence[str]) -> None:
        shown = ", ".join(device_ids[:10]) + (" ..." if len(device_ids) > 10 else "")
        super().__init__(
            f"gateway {gateway_id!r} cannot {action}: {len(device_ids)} device(s) not retired "
            f"report through it ({shown}); move or retire them first"
        )
        self.device_ids = list(device_ids)


def gateway_problem(device: DeviceCreate, gateway: GatewayPublic | None) -> str | None:
    """Why this device cannot report through this gateway, or None."""
    if gateway is None or device.gateway_id is None:
        # Unregistered gateway ids stay allowed: devices were registered before gateways were.
        return None
    if gateway.status is GatewayStatus.retired and device.status is not DeviceStatus.retired:
        return f"gateway_id: gateway {gateway.id!r} is retired"
    if gateway.kind is GatewayKind.mqtt and device.network_server is not None:
        return (
            f"gateway_id: gateway {gateway.id!r} is an MQTT gateway, but this device is a "
            f"LoRaWAN device on {device.network_server.value}"
        )
    if gateway.kind is not GatewayKind.mqtt and device.network_server != gateway.kind.value:
        on = device.network_server.value if device.network_server else "no network server"
        return (
            f"gateway_id: gateway {gateway.id!r} is a {gateway.kind.value} LoRaWAN gateway, "
            f"but this device is on {on}"
        )
    return None


def _row_values(device: DeviceCreate) -> dict[str, object]:
    return device.model_dump(include=set(DeviceCreate.model_fields))


def changed_since_query(since: datetime) -> Select[DeviceRow]:
    """The devices registered or changed after `since` (both times are indexed)."""
    return select(DeviceRow).where(or_(DeviceRow.created_at > since, DeviceRow.updated_at > since))


class DeviceRegistry:
    """Create, read, update and retire devices; tells listeners about every change.

    Devices are never deleted: alerts, incidents and routes refer to their ids, so
    "delete" retires them (ingest then refuses their readings).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        on_change: Callable[[DevicePublic], object] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change
        self.gateways = GatewayRegistry(sessions)

    def notify(self, device: DevicePublic) -> None:
        """Tell the listener about a change made elsewhere (another process)."""
        self._changed([device])

    def _changed(self, devices: Iterable[DevicePublic]) -> None:
        if self._on_change:
            for device in devices:
                self._on_change(device)

    async def check_references(
        self, device: DeviceCreate, *, exclude_id: str | None = None
    ) -> None:
        """Raise a RegistryError or ValueError if the device clashes with the registry."""
        if device.network_server is not None and device.ns_device_id is not None:
            owner = await self.ns_owner(device.network_server.value, device.ns_device_id)
            if owner is not None and owner != (exclude_id or device.id):
                raise NsDeviceTakenError(device.network_server.value, device.ns_device_id, owner)
        if device.gateway_id is not None:
            problem = gateway_problem(device, await self.gateways.get(device.gateway_id))
            if problem:
                raise ValueError(problem)

    async def create(self, device: DeviceCreate) -> DevicePublic:
        """Register a device; DeviceExistsError when the id is taken, ValueError when unusable."""
        if await self.get(device.id) is not None:
            raise DeviceExistsError(device.id)
        await self.check_references(device)
        (public,) = await self.create_many([device])
        return public

    async def create_many(self, devices: Sequence[DeviceCreate]) -> list[DevicePublic]:
        """Register devices in one transaction: all of them or, on any clash, none."""
        now = datetime.now(UTC)
        rows = [DeviceRow(**_row_values(d), created_at=now) for d in devices]
        async with self._sessions() as session:
            session.add_all(rows)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise await self._clash(devices) from None
            public = [DevicePublic.model_validate(row) for row in rows]
        self._changed(public)
        return public

    async def _clash(self, devices: Sequence[DeviceCreate]) -> RegistryError:
        # Someone registered the same id (or network server id) between our check and commit.
        taken = {d.id for d in await self.get_many([d.id for d in devices])}
        for device in devices:
            if device.id in taken:
                return DeviceExistsError(device.id)
        for device in devices:
            if device.network_server and device.ns_device_id:
                owner = await self.ns_owner(device.network_server.value, device.ns_device_id)
                if owner is not None:
                    return NsDeviceTakenError(
                        device.network_server.value, device.ns_device_id, owner
                    )
        return RegistryError("the registry changed during this request; try again")

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

    async def ns_owner(self, network_server: str, ns_device_id: str) -> str | None:
        """The Sigap device id registered with this network server id, if any."""
        owners = await self.ns_owners([(network_server, ns_device_id)])
        return owners.get((network_server, ns_device_id))

    async def ns_owners(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(network server, ns device id) -> Sigap device id, for those registered."""
        if not keys:
            return {}
        query = select(DeviceRow.network_server, DeviceRow.ns_device_id, DeviceRow.id).where(
            tuple_(DeviceRow.network_server, DeviceRow.ns_device_id).in_(list(keys))
        )
        async with self._sessions() as session:
            rows = await session.execute(query)
            # The IN clause matched both columns, so neither is NULL here.
            return {(str(ns), str(key)): device_id for ns, key, device_id in rows}

    async def find_by_ns(self, network_server: str, keys: Iterable[str]) -> DevicePublic | None:
        """The device a LoRaWAN uplink belongs to, trying its keys in order (DevEUI first)."""
        keys = [k.lower() for k in keys]  # DevEUIs are stored lowercased; TTS ids are lowercase
        owners = await self.ns_owners([(network_server, k) for k in keys])
        for key in keys:
            owner = owners.get((network_server, key))
            if owner is not None:
                return await self.get(owner)
        return None

    async def find(
        self,
        *,
        kind: str | None = None,
        district: str | None = None,
        zone: str | None = None,
        status: str | None = None,
        gateway_id: str | None = None,
        network_server: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DevicePublic]:
        """Devices ordered by id, optionally filtered."""
        query = select(DeviceRow).order_by(DeviceRow.id).limit(limit).offset(offset)
        filters = {
            DeviceRow.kind: kind,
            DeviceRow.district: district,
            DeviceRow.zone: zone,
            DeviceRow.status: status,
            DeviceRow.gateway_id: gateway_id,
            DeviceRow.network_server: network_server,
        }
        for column, value in filters.items():
            if value:
                query = query.where(column == value)
        async with self._sessions() as session:
            return [DevicePublic.model_validate(row) for row in await session.scalars(query)]

    async def all(self) -> list[DevicePublic]:
        """Every registered device (to warm ingest's directory at start)."""
        async with self._sessions() as session:
            rows = await session.scalars(select(DeviceRow))
            return [DevicePublic.model_validate(row) for row in rows]

    async def changed_since(self, since: datetime) -> list[DevicePublic]:
        """Devices registered or changed after `since` (other processes' directories)."""
        async with self._sessions() as session:
            rows = await session.scalars(changed_since_query(since))
            return [DevicePublic.model_validate(row) for row in rows]

    async def replace(self, device_id: str, device: DeviceCreate) -> DevicePublic:
        """Overwrite a device's writable fields (PUT); its id and kind cannot change."""
        if device.id != device_id:
            raise ValueError(f"id {device.id!r} in the body differs from {device_id!r} in the path")
        current = await self.get(device_id)
        if current is None:
            raise NotFoundError("device", device_id)
        if current.kind is not device.kind:
            raise ValueError(
                f"kind cannot change ({current.kind.value} -> {device.kind.value}); "
                "retire this device and register a new one"
            )
        await self.check_references(device)
        async with self._sessions() as session:
            row = await session.get(DeviceRow, device_id)
            if row is None:
                raise NotFoundError("device", device_id)
            for name, value in _row_values(device).items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise await self._clash([]) from None
            public = DevicePublic.model_validate(row)
        self._changed([public])
        return public

    async def update(self, device_id: str, changes: DeviceUpdate) -> DevicePublic:
        """Apply a partial update (PATCH); pydantic ValidationError or ValueError if invalid."""
        current = await self.get(device_id)
        if current is None:
            raise NotFoundError("device", device_id)
        # Applied to the record as stored: one whose profile has left the library since
        # still takes a PATCH that sets another profile or clears it.
        return await self.replace(device_id, changes.apply(current))

    async def retire(self, device_id: str) -> DevicePublic:
        """Retire a device (what DELETE does): kept for history, refused by ingest."""
        current = await self.get(device_id)
        if current is None:
            raise NotFoundError("device", device_id)
        if current.status is DeviceStatus.retired:
            return current
        # The stored record with its status changed, not validated again: retiring works
        # even for a device whose profile has left the library since it was registered.
        return await self.replace(
            device_id, current.model_copy(update={"status": DeviceStatus.retired})
        )

    async def mark_seen(self, seen: Mapping[str, datetime], chunk: int = 250) -> None:
        """Record when devices last reported, in short transactions of `chunk` devices.

        One transaction for a whole fleet would hold SQLite's write lock long enough to
        stall the alert commits waiting behind it (seconds, every 10 s, at 4,000 devices).
        """
        rows = [{"id": device_id, "last_seen_at": at} for device_id, at in seen.items()]
        for start in range(0, len(rows), chunk):
            async with self._sessions() as session:
                await session.execute(update(DeviceRow), rows[start : start + chunk])
                await session.commit()


class GatewayRegistry:
    """Create, read, update and retire gateways."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, gateway: GatewayCreate) -> GatewayPublic:
        """Register a gateway; GatewayExistsError when the id is taken."""
        row = GatewayRow(**gateway.model_dump(), created_at=datetime.now(UTC))
        async with self._sessions() as session:
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                raise GatewayExistsError(gateway.id) from None
            return GatewayPublic.model_validate(row)

    async def get(self, gateway_id: str) -> GatewayPublic | None:
        """One gateway, or None."""
        async with self._sessions() as session:
            row = await session.get(GatewayRow, gateway_id)
            return GatewayPublic.model_validate(row) if row else None

    async def get_many(self, gateway_ids: Collection[str]) -> dict[str, GatewayPublic]:
        """The registered gateways among the given ids, by id."""
        if not gateway_ids:
            return {}
        async with self._sessions() as session:
            rows = await session.scalars(select(GatewayRow).where(GatewayRow.id.in_(gateway_ids)))
            return {row.id: GatewayPublic.model_validate(row) for row in rows}

    async def find(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[GatewayPublic]:
        """Gateways ordered by id, optionally filtered."""
        query = select(GatewayRow).order_by(GatewayRow.id).limit(limit).offset(offset)
        if kind:
            query = query.where(GatewayRow.kind == kind)
        if status:
            query = query.where(GatewayRow.status == status)
        async with self._sessions() as session:
            return [GatewayPublic.model_validate(row) for row in await session.scalars(query)]

    async def devices_behind(self, gateway_id: str) -> list[DevicePublic]:
        """Devices registered behind this gateway that are not retired."""
        query = (
            select(DeviceRow)
            .where(DeviceRow.gateway_id == gateway_id)
            .where(DeviceRow.status != DeviceStatus.retired.value)
            .order_by(DeviceRow.id)
        )
        async with self._sessions() as session:
            return [DevicePublic.model_validate(row) for row in await session.scalars(query)]

    async def update(self, gateway_id: str, changes: GatewayUpdate) -> GatewayPublic:
        """Apply a partial update (PATCH); refuses changes that strand its devices."""
        current = await self.get(gateway_id)
        if current is None:
            raise NotFoundError("gateway", gateway_id)
        values = {k: v for k, v in changes.model_dump(exclude_unset=True).items() if v is not None}
        merged = GatewayPublic.model_validate(current.model_dump() | values)
        if merged.status is GatewayStatus.retired and current.status is not GatewayStatus.retired:
            behind = await self.devices_behind(gateway_id)
            if behind:
                raise GatewayInUseError(gateway_id, "be retired", [d.id for d in behind])
        if merged.kind is not current.kind:
            stranded = [
                d.id for d in await self.devices_behind(gateway_id) if gateway_problem(d, merged)
            ]
            if stranded:
                raise GatewayInUseError(
                    gateway_id, f"become a {merged.kind.value} gateway", stranded
                )
        async with self._sessions() as session:
            row = await session.get(GatewayRow, gateway_id)
            if row is None:
                raise NotFoundError("gateway", gateway_id)
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
            await session.commit()
            return GatewayPublic.model_validate(row)

    async def retire(self, gateway_id: str) -> GatewayPublic:
        """Retire a gateway (what DELETE does); refused while live devices report through it."""
        return await self.update(gateway_id, GatewayUpdate(status=GatewayStatus.retired))
