"""Hostile input the API must refuse with a 4xx that says what is wrong, never a 500 (#22.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard_api.app import create_app
from dashboard_api.openapi import document_refusals
from devices.provisioning import InMemoryAccounts
from dispatch.stations.registry import StationRegistry
from dispatch.store import AlertStore
from pickup_routes.service import RouteService
from tests.unit.conftest import DEPOT, api_client, api_services
from tests.unit.test_alert_lifecycle import fire_event

# JSON written by hand (json.dumps cannot write a lone surrogate as an escape): `@` is
# where the value under test goes.
FIRE = '{"id": "fire-x", "kind": "fire", "lat": @, "lon": 112.95}'
GATEWAY = '{"id": "gw-x", "kind": "mqtt", "lat": @, "lon": 112.95}'
STATION = '{"id": "damkar-x", "kind": "fire_station", "lat": -2.54, "lon": 112.95, "name": @}'
JSON = {"Content-Type": "application/json"}
# What json.loads turns into a float that is not a number, or infinite (1e400 overflows).
NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]


@pytest.fixture
async def client(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[httpx.AsyncClient]:
    stations = StationRegistry(sessions)
    services = api_services(sessions, stations=stations, accounts=InMemoryAccounts())
    services.routes = RouteService(
        sessions, stations, services.devices, services.alerts, bin_status=lambda _id: None
    )
    async with api_client(services) as client:
        for path, body in (
            ("/api/v1/devices", {"id": "fire-1", "kind": "fire", "lat": -2.5, "lon": 112.9}),
            ("/api/v1/gateways", {"id": "gw-1", "kind": "mqtt", "lat": -2.5, "lon": 112.9}),
            ("/api/v1/stations", DEPOT),
        ):
            assert (await client.post(path, json=body)).status_code == 201
        yield client


def _refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    for word in words:
        assert word in response.text, response.text


@pytest.mark.parametrize("number", NOT_FINITE)
async def test_non_finite_numbers_are_refused_in_every_body(
    client: httpx.AsyncClient, number: str
) -> None:
    def send(method: str, path: str, body: str) -> Any:
        return client.request(method, path, content=body.encode(), headers=JSON)

    for method, path, body in (
        ("POST", "/api/v1/devices", FIRE.replace("@", number)),
        ("PUT", "/api/v1/devices/fire-1", (FIRE.replace("@", number)).replace("fire-x", "fire-1")),
        ("PATCH", "/api/v1/devices/fire-1", '{"lon": @}'.replace("@", number)),
        ("POST", "/api/v1/gateways", GATEWAY.replace("@", number)),
        ("PATCH", "/api/v1/gateways/gw-1", '{"lat": @}'.replace("@", number)),
        ("POST", "/api/v1/stations", (STATION.replace("@", '"x"')).replace("-2.54", number)),
    ):
        _refused(await send(method, path, body), "finite", "body")
    nested = (
        '{"id": "fire-y", "kind": "fire", "lat": -2.5, "lon": 112.9, '
        '"thresholds": {"heat_fixed_c": @}}'.replace("@", number)
    )
    _refused(await send("POST", "/api/v1/devices", nested), "thresholds", "heat_fixed_c")
    offsets = nested.replace("thresholds", "sensor_offsets").replace("heat_fixed_c", "temp_c")
    _refused(await send("POST", "/api/v1/devices", offsets), "sensor_offsets", "temp_c")
    depot = (STATION.replace("@", '"x"')).replace("fire_station", "waste_depot")
    depot = depot[:-1] + ', "trucks": 1, "truck_capacity_l": @}'.replace("@", number)
    _refused(await send("POST", "/api/v1/stations", depot), "truck_capacity_l")
    assert (await client.get("/api/v1/devices/fire-x")).status_code == 404


async def test_lone_surrogates_are_refused_in_any_string(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    (raised,) = await AlertStore(sessions).apply([fire_event()])
    lone = '"bad \\ud800 name"'
    for method, path, body in (
        ("POST", "/api/v1/devices", FIRE.replace('"fire-x"', lone).replace("@", "-2.5")),
        (
            "POST",
            "/api/v1/devices",
            (FIRE.replace("@", "-2.5"))[:-1] + ', "name": @}'.replace("@", lone),
        ),
        ("PATCH", "/api/v1/devices/fire-1", '{"address": @}'.replace("@", lone)),
        ("PATCH", "/api/v1/devices/fire-1", '{"thresholds": {@: 1}}'.replace("@", lone)),
        (
            "POST",
            "/api/v1/gateways",
            (GATEWAY.replace("@", "-2.5"))[:-1] + ', "name": @}'.replace("@", lone),
        ),
        ("POST", "/api/v1/stations", STATION.replace("@", lone)),
        ("POST", "/api/v1/tokens", '{"name": @, "role": "crew"}'.replace("@", lone)),
        ("POST", f"/api/v1/alerts/{raised.alert.id}/ack", '{"note": [@]}'.replace("@", lone)),
        ("POST", "/console/session", '{"token": @}'.replace("@", lone)),
    ):
        response = await client.request(method, path, content=body.encode(), headers=JSON)
        _refused(response, "surrogate")
    # A surrogate pair is one ordinary character (U+1F525) and stays welcome.
    fire = (FIRE.replace("@", "-2.5"))[:-1] + ', "name": "api \\ud83d\\udd25"}'
    created = await client.post("/api/v1/devices", content=fire.encode(), headers=JSON)
    assert created.status_code == 201 and created.json()["name"] == "api \U0001f525"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/alerts",
        "/api/v1/devices",
        "/api/v1/gateways",
        "/api/v1/stations",
        "/api/v1/bins",
    ],
)
@pytest.mark.parametrize("offset", [2**63, 10**23])
async def test_offsets_are_bounded(client: httpx.AsyncClient, path: str, offset: int) -> None:
    _refused(await client.get(path, params={"offset": offset}), "offset", "less than or equal")
    assert (await client.get(path, params={"offset": 10**9})).status_code == 200


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
async def test_non_finite_query_numbers_are_refused(client: httpx.AsyncClient, value: str) -> None:
    for name in ("min_fill_pct", "full_within_h"):
        _refused(await client.get("/api/v1/bins", params={name: value}), name, "finite")


@pytest.mark.parametrize("account", ["sigap", "sigap-admin"])
async def test_retiring_a_device_named_like_sigaps_own_account_leaves_that_account_alone(
    client: httpx.AsyncClient, account: str
) -> None:
    device = {"id": account, "kind": "fire", "lat": -2.5, "lon": 112.9}
    assert (await client.post("/api/v1/devices", json=device)).status_code == 201
    retired = await client.delete(f"/api/v1/devices/{account}")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    revoke = await client.delete(f"/api/v1/devices/{account}/credentials")
    assert revoke.status_code == 409 and "reserved for Sigap itself" in revoke.text
    issued = await client.post(f"/api/v1/devices/{account}/credentials")
    assert issued.status_code == 409


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/alerts/{n}",
        "/api/v1/alerts/{n}/actions",
        "/api/v1/alerts/{n}/cap",
        "/api/v1/incidents/{n}",
        "/api/v1/incidents/{n}/cap",
    ],
)
async def test_row_ids_beyond_64_bits_are_refused(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path.format(n=2**63))
    assert response.status_code == 422, response.text
    assert "less than or equal to 9223372036854775807" in response.text
    assert (await client.get(path.format(n=2**63 - 1))).status_code == 404
    token = await client.delete(f"/api/v1/tokens/{2**63}")
    assert token.status_code == 422 and "less than or equal" in token.text


# Found by the API fuzz tests (test_api_fuzz.py): an id below -2**63 overflowed in SQLite
# (OverflowError, a 500) on every route path with a row id. Ids count from 1.
@pytest.mark.parametrize("n", [-(2**63) - 1, -1, 0])
@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/routes/{n}"),
        ("GET", "/api/v1/routes/{n}/events"),
        ("GET", "/api/v1/routes/plans/{n}"),
        ("POST", "/api/v1/routes/{n}/stops/bin-1/done"),
        ("POST", "/api/v1/routes/{n}/stops/bin-1/skip"),
        ("GET", "/api/v1/routes?plan_id={n}"),
        ("GET", "/api/v1/alerts/{n}"),
        ("DELETE", "/api/v1/tokens/{n}"),
    ],
)
async def test_row_ids_below_one_are_refused(
    client: httpx.AsyncClient, method: str, path: str, n: int
) -> None:
    body = {"reason": "blocked"} if path.endswith("skip") else None
    response = await client.request(method, path.format(n=n), json=body)
    _refused(response, "greater than or equal to 1")


def test_the_openapi_document_lists_every_refusal() -> None:
    # Found by the API fuzz tests: the document listed 200 and 422 only, while every
    # /api/v1 route also answers 401, writes 403, paths with an id 404, bodies 400 and 413;
    # and a 422 from a check after validation is a sentence, not FastAPI's list.
    document = create_app().openapi()
    refusal = {"application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}}
    device = document["paths"]["/api/v1/devices/{device_id}"]
    assert {"200", "401", "404", "422"} == device["get"]["responses"].keys()
    put = device["put"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "413", "422"} == put.keys()
    assert all(put[status]["content"] == refusal for status in ("401", "403", "404", "409"))
    listed = document["paths"]["/api/v1/devices"]["get"]["responses"]
    assert {"200", "401", "422"} == listed.keys()  # no id, no 404; a read, no 403
    tokens = document["paths"]["/api/v1/tokens"]["get"]["responses"]
    assert "403" in tokens  # a read for admins only
    readings = document["paths"]["/api/v1/devices/{device_id}/readings"]["get"]
    assert readings["responses"]["503"]["content"] == refusal
    imported = document["paths"]["/api/v1/devices/import"]["post"]["responses"]["422"]
    assert imported["content"]["application/json"]["schema"]["$ref"].endswith("ImportRefused")
    schemas = document["components"]["schemas"]
    assert {"type": "string"} in schemas["HTTPValidationError"]["properties"]["detail"]["anyOf"]
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]  # Prometheus' text format, not JSON
    assert document_refusals(document) == document  # idempotent: /openapi.json is cached


@pytest.mark.parametrize("last", [str(2**63), "-1", "ten"])
async def test_last_event_id_beyond_64_bits_is_refused(
    client: httpx.AsyncClient, last: str
) -> None:
    response = await client.get("/api/v1/alerts/stream", headers={"Last-Event-ID": last})
    assert response.status_code == 400 and "Last-Event-ID must be an event id" in response.text
