"""/api/v1/stations in-process on SQLite: fire stations and waste depots, validation."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.stations.registry import StationRegistry
from tests.unit.conftest import DEPOT, api_client, api_services

FIRE_STATION: dict[str, Any] = {
    "id": "damkar-sampit",
    "kind": "fire_station",
    "name": "Pos Damkar Sampit",
    "lat": -2.5405,
    "lon": 112.9490,
    "district": "Mentawa Baru Ketapang",
}


@pytest.fixture
async def client(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[httpx.AsyncClient]:
    services = api_services(sessions, stations=StationRegistry(sessions))
    async with api_client(services) as client:
        yield client


async def test_create_get_and_list(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/stations", json=DEPOT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["shift_start"] == "06:00:00" and body["shift_end"] == "14:00:00"
    assert body["truck_capacity_l"] == 12_000 and body["truck_capacity_bins"] is None
    assert body["created_at"]
    assert (await client.post("/api/v1/stations", json=FIRE_STATION)).status_code == 201
    fire = (await client.get("/api/v1/stations/damkar-sampit")).json()
    assert fire["kind"] == "fire_station" and fire["trucks"] is None
    assert (await client.get("/api/v1/stations/depot-baamang")).json() == body
    listed = (await client.get("/api/v1/stations")).json()
    assert [s["id"] for s in listed] == ["damkar-sampit", "depot-baamang"]
    depots = (await client.get("/api/v1/stations", params={"kind": "waste_depot"})).json()
    assert [s["id"] for s in depots] == ["depot-baamang"]
    by_district = (await client.get("/api/v1/stations", params={"district": "Baamang"})).json()
    assert [s["id"] for s in by_district] == ["depot-baamang"]


async def test_shift_times_are_as_the_openapi_document_says(client: httpx.AsyncClient) -> None:
    # Found by the API fuzz tests: the document said JSON Schema's `time` format, which is
    # RFC 3339's and needs an offset; the API answers local WIB times such as "06:00:00".
    depot = (await client.post("/api/v1/stations", json=DEPOT)).json()
    document = (await client.get("/openapi.json")).json()
    shift_start = document["components"]["schemas"]["StationPublic"]["properties"]["shift_start"]
    (text,) = [s for s in shift_start["anyOf"] if s.get("type") == "string"]
    assert "format" not in text
    for value in (depot["shift_start"], depot["shift_end"], "06:00", "22:30:15.5"):
        assert re.fullmatch(text["pattern"], value), value
    assert not re.fullmatch(text["pattern"], "06:00+07:00")  # refused: local time only


async def test_capacity_in_bins_and_a_night_shift(client: httpx.AsyncClient) -> None:
    night = DEPOT | {
        "id": "depot-malam",
        "truck_capacity_l": None,
        "truck_capacity_bins": 20,
        "shift_start": "22:00",
        "shift_end": "04:00",
        "collection_window_h": 24,
    }
    response = await client.post("/api/v1/stations", json=night)
    assert response.status_code == 201, response.text
    assert response.json()["truck_capacity_bins"] == 20


async def test_duplicate_and_missing(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/stations", json=DEPOT)).status_code == 201
    again = await client.post("/api/v1/stations", json=DEPOT | {"kind": "fire_station"})
    # The body is invalid as a fire station too; a valid duplicate is the conflict.
    assert again.status_code == 422
    again = await client.post("/api/v1/stations", json=DEPOT)
    assert again.status_code == 409 and "already registered" in again.json()["detail"]
    missing = await client.get("/api/v1/stations/nowhere")
    assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "police"}, "'fire_station' or 'waste_depot'"),
        ({"lat": -91}, "greater than or equal to -90"),
        ({"id": "depot/1"}, "pattern"),
        ({"trucks": None}, "a waste depot needs trucks"),
        ({"trucks": 0}, "greater than or equal to 1"),
        ({"shift_start": None, "shift_end": None}, "needs shift_start, shift_end"),
        ({"truck_capacity_l": None}, "truck_capacity_l or truck_capacity_bins"),
        ({"truck_capacity_bins": 10}, "truck_capacity_l or truck_capacity_bins (one)"),
        ({"truck_capacity_l": -5}, "greater than 0"),
        ({"shift_end": "06:00"}, "shift_end must differ from shift_start"),
        ({"shift_start": "25:00"}, "shift_start"),
        ({"shift_start": "06:00+08:00"}, "without an offset"),
        ({"collection_window_h": 0}, "greater than 0"),
        ({"fleet": 3}, "Extra inputs are not permitted"),
    ],
)
async def test_depot_validation(
    client: httpx.AsyncClient, change: dict[str, Any], message: str
) -> None:
    response = await client.post("/api/v1/stations", json=DEPOT | change)
    assert response.status_code == 422, response.text
    assert message in response.text


async def test_fire_stations_have_no_trucks(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/stations", json=FIRE_STATION | {"trucks": 2})
    assert response.status_code == 422
    assert "trucks applies only to waste depots" in response.text


async def test_unavailable_without_a_registry(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    services = api_services(sessions)
    async with api_client(services) as client:
        assert (await client.get("/api/v1/stations")).status_code == 503
        assert (await client.get("/api/v1/routes")).status_code == 503
