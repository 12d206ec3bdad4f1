"""Fast-tier fixtures: a fresh database per test (SQLite, or PostgreSQL), batch builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.readings import KIND_CODES, Q_INDEX, QUANTITIES
from dashboard_api.access import Authenticator, TokenStore
from dashboard_api.app import create_app
from dashboard_api.deps import ApiServices
from devices.registry import DeviceRegistry
from dispatch.broadcast import AlertBroadcaster
from dispatch.store import AlertStore
from ingest.batch import ReadingBatch
from ingest.rejected import RejectedStore
from sigap.runtime import make_engine

# A waste depot as the routes and stations tests register it.
DEPOT: dict[str, Any] = {
    "id": "depot-baamang",
    "kind": "waste_depot",
    "name": "Pool truk DLH Baamang",
    "lat": -2.5262,
    "lon": 112.9517,
    "district": "Baamang",
    "trucks": 3,
    "truck_capacity_l": 12_000,
    "shift_start": "06:00",
    "shift_end": "14:00",
}


@pytest.fixture
async def sessions(sql_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database at the newest migration (SQLite unless parametrised)."""
    engine = make_engine(sql_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def make_batch(
    rows: Sequence[tuple[int, int, Mapping[str, float]]],
    kinds: dict[int, str] | None = None,
    device_ids: Sequence[str] | None = None,
) -> ReadingBatch:
    """A batch from (device index, ts_ms, {quantity: value}) rows; kind defaults to fire."""
    n = len(rows)
    kinds = kinds or {}
    values = np.full((len(QUANTITIES), n), np.nan)
    for i, (_, _, quantities) in enumerate(rows):
        for name, value in quantities.items():
            values[Q_INDEX[name], i] = value
    devices = [r[0] for r in rows]
    ids = device_ids or [f"dev-{i}" for i in range(max(devices, default=0) + 1)]
    return ReadingBatch(
        device=np.array(devices, np.int32),
        kind=np.array([KIND_CODES[kinds.get(d, "fire")] for d in devices], np.uint8),
        ts_ms=np.array([r[1] for r in rows], np.int64),
        seq=np.full(n, -1, np.int64),
        values=values,
        device_ids=ids,
    )


def api_services(sessions: async_sessionmaker[AsyncSession], **overrides: Any) -> ApiServices:
    """The API's services on the test database; a test passes what it cares about."""

    async def ready() -> dict[str, str | None]:
        return {}

    base: dict[str, Any] = {
        "devices": DeviceRegistry(sessions),
        "alerts": AlertStore(sessions),
        "broadcaster": AlertBroadcaster(),
        "readings": None,
        "rejected": RejectedStore(sessions),
        "readiness": ready,
        "last_seen": lambda _id: None,
        "auth": auth_for_tests(sessions),
    }
    return ApiServices(**(base | overrides))


# Every /api/v1 request needs a bearer token; the unit tests act as admin unless a test
# is about roles.
TEST_ADMIN_TOKEN = "test-admin-token"
ADMIN_HEADERS = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}


def auth_for_tests(sessions: async_sessionmaker[AsyncSession]) -> Authenticator:
    """The authenticator the unit tests' apps use: TEST_ADMIN_TOKEN is admin."""
    return Authenticator(TokenStore(sessions), TEST_ADMIN_TOKEN)


@asynccontextmanager
async def api_client(services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=ADMIN_HEADERS
    ) as client:
        yield client
