"""API access: bearer tokens, one test per role, and the endpoints left open."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard_api.access.tables import ApiTokenRow
from devices.provisioning import InMemoryAccounts
from dispatch.store import AlertStore
from tests.unit.conftest import ADMIN_HEADERS, api_client, api_services
from tests.unit.test_alert_lifecycle import fire_event

DEVICE = {"id": "f-access", "kind": "fire", "lat": -2.54, "lon": 112.95}


@pytest.fixture
async def client(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api_services(sessions)) as c:
        c.headers.clear()  # each test says who it is
        yield c


async def issue(client: httpx.AsyncClient, role: str, name: str | None = None) -> dict[str, str]:
    """Issue a token as admin; returns the headers that use it."""
    response = await client.post(
        "/api/v1/tokens", json={"name": name or f"{role}-1", "role": role}, headers=ADMIN_HEADERS
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_no_token_no_api_but_probes_stay_open(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/devices", "/api/v1/alerts", "/api/v1/ingest/rejected"):
        response = await client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in response.json()["detail"]
    wrong = await client.get("/api/v1/devices", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]
    assert (await client.post("/api/v1/devices", json=DEVICE)).status_code == 401
    for path in ("/healthz", "/readyz"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/metrics")).status_code == 200  # open, like the probes


async def test_readyz_names_failing_checks_to_anyone_and_says_why_only_to_an_admin(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def failing() -> dict[str, str | None]:
        return {"sql": None, "influxdb": "InfluxDB at http://10.0.0.5:8086 unreachable"}

    async with api_client(api_services(sessions, readiness=failing)) as client:
        anonymous = await client.get("/readyz", headers={"Authorization": ""})
        assert anonymous.status_code == 503
        assert anonymous.json()["checks"] == {"sql": "ok", "influxdb": "failing"}
        detailed = (await client.get("/readyz")).json()  # the client's admin token
        assert "10.0.0.5" in detailed["checks"]["influxdb"]
        crew = await issue(client, "crew")
        assert (await client.get("/readyz", headers=crew)).json()["checks"]["influxdb"] == (
            "failing"
        )


async def test_tokens_are_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    issued = await client.post(
        "/api/v1/tokens", json={"name": "console-1", "role": "dispatcher"}, headers=ADMIN_HEADERS
    )
    body = issued.json()
    assert body["token"].startswith("sigap_") and body["created_by"] == "SIGAP_ADMIN_TOKEN"
    listed = (await client.get("/api/v1/tokens", headers=ADMIN_HEADERS)).json()
    assert [t["name"] for t in listed] == ["console-1"] and "token" not in listed[0]
    async with sessions() as session:
        row = await session.scalar(select(ApiTokenRow))
    assert row is not None and body["token"] not in (row.token_hash, row.prefix)
    bad_role = await client.post(
        "/api/v1/tokens", json={"name": "x", "role": "root"}, headers=ADMIN_HEADERS
    )
    assert bad_role.status_code == 422 and "role" in bad_role.text


async def test_technician_manages_devices_and_nothing_else(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tech = await issue(client, "technician")
    assert (await client.post("/api/v1/devices", json=DEVICE, headers=tech)).status_code == 201
    patched = await client.patch(
        f"/api/v1/devices/{DEVICE['id']}", json={"name": "lobby"}, headers=tech
    )
    assert patched.status_code == 200
    (raised,) = await AlertStore(sessions).apply([fire_event()])
    ack = await client.post(f"/api/v1/alerts/{raised.alert.id}/ack", json={}, headers=tech)
    assert ack.status_code == 403
    assert "technician" in ack.json()["detail"] and "dispatcher" in ack.json()["detail"]
    assert (await client.post("/api/v1/routes/plan", json={}, headers=tech)).status_code == 403
    assert (await client.get("/api/v1/tokens", headers=tech)).status_code == 403
    assert (await client.get("/api/v1/alerts", headers=tech)).status_code == 200  # reads


async def test_dispatcher_acts_on_alerts_under_its_own_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    console = await issue(client, "dispatcher", name="console-damkar-1")
    (raised,) = await AlertStore(sessions).apply([fire_event()])
    ack = await client.post(f"/api/v1/alerts/{raised.alert.id}/ack", json={}, headers=console)
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "console-damkar-1"
    assert (await client.post("/api/v1/devices", json=DEVICE, headers=console)).status_code == 403
    webhook = {"url": "http://127.0.0.1:9/hook", "secret": "s" * 16}
    assert (await client.post("/api/v1/webhooks", json=webhook, headers=console)).status_code == 403


async def test_crew_plans_routes_but_touches_no_alert_or_device(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    crew = await issue(client, "crew")
    # Past the role check: this app has no route planner, so 503 rather than 403.
    plan = await client.post("/api/v1/routes/plan", json={"depot_id": "d1"}, headers=crew)
    assert plan.status_code in (503, 422) and plan.status_code != 403
    (raised,) = await AlertStore(sessions).apply([fire_event()])
    ack = await client.post(f"/api/v1/alerts/{raised.alert.id}/ack", json={}, headers=crew)
    assert ack.status_code == 403
    assert (await client.delete(f"/api/v1/devices/{DEVICE['id']}", headers=crew)).status_code == 403


async def test_admin_does_everything_and_a_revoked_token_stops_working(
    client: httpx.AsyncClient,
) -> None:
    assert (
        await client.post("/api/v1/devices", json=DEVICE, headers=ADMIN_HEADERS)
    ).status_code == 201
    tech = await issue(client, "technician")
    assert (await client.get("/api/v1/devices", headers=tech)).status_code == 200
    token_id = (await client.get("/api/v1/tokens", headers=ADMIN_HEADERS)).json()[0]["id"]
    revoked = await client.delete(f"/api/v1/tokens/{token_id}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await client.get("/api/v1/devices", headers=tech)).status_code == 401
    assert (await client.delete("/api/v1/tokens/999", headers=ADMIN_HEADERS)).status_code == 404


async def test_credentials_issue_revoke_and_retire_with_the_technician_role(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    accounts = InMemoryAccounts()
    async with api_client(api_services(sessions, accounts=accounts)) as client:
        tech = await issue(client, "technician")
        crew = await issue(client, "crew")
        assert (await client.post("/api/v1/devices", json=DEVICE, headers=tech)).status_code == 201
        path = f"/api/v1/devices/{DEVICE['id']}/credentials"
        assert (await client.post(path, headers=crew)).status_code == 403
        issued = await client.post(path, headers=tech)
        assert issued.status_code == 201
        assert issued.json()["username"] == DEVICE["id"] and issued.json()["password"]
        assert await accounts.get(str(DEVICE["id"])) is not None
        missing = await client.post("/api/v1/devices/nobody/credentials", headers=tech)
        assert missing.status_code == 404
        retired = await client.delete(f"/api/v1/devices/{DEVICE['id']}", headers=tech)
        assert retired.status_code == 200
        assert await accounts.get(str(DEVICE["id"])) is None  # retiring revoked the login
        assert (await client.post(path, headers=tech)).status_code == 409


async def test_a_device_revoke_never_touches_a_gateway_login_of_the_same_name(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # #22.6: a gateway and a device both registered as gw-1, only the gateway has a login.
    accounts = InMemoryAccounts()
    async with api_client(api_services(sessions, accounts=accounts)) as client:
        gateway = {"id": "gw-1", "kind": "mqtt", "lat": -2.5, "lon": 112.9}
        device = DEVICE | {"id": "gw-1"}
        assert (await client.post("/api/v1/gateways", json=gateway)).status_code == 201
        assert (await client.post("/api/v1/devices", json=device)).status_code == 201
        issued = await client.post("/api/v1/gateways/gw-1/credentials")
        assert issued.status_code == 201
        password = issued.json()["password"]

        revoke = await client.delete("/api/v1/devices/gw-1/credentials")
        assert revoke.status_code == 409 and "is a gateway account" in revoke.text
        assert (await client.delete("/api/v1/devices/gw-1")).status_code == 200  # retire
        assert accounts.authenticate("gw-1", password)  # the gateway still logs in

        # And the other way round: a gateway revoke leaves a device's login alone.
        assert (await client.post("/api/v1/devices", json=DEVICE)).status_code == 201
        device_login = await client.post(f"/api/v1/devices/{DEVICE['id']}/credentials")
        gone = await client.delete(f"/api/v1/gateways/{DEVICE['id']}/credentials")
        assert gone.status_code == 409 and "is a device account" in gone.text
        assert accounts.authenticate(str(DEVICE["id"]), device_login.json()["password"])
        missing = await client.delete("/api/v1/gateways/gw-9/credentials")
        assert missing.status_code == 404 and "gateway 'gw-9' has no MQTT login" in missing.text

        assert (await client.delete("/api/v1/gateways/gw-1/credentials")).status_code == 204
        assert not accounts.authenticate("gw-1", password)


async def test_credentials_need_a_managed_broker(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/devices", json=DEVICE, headers=ADMIN_HEADERS)
    response = await client.post(
        f"/api/v1/devices/{DEVICE['id']}/credentials", headers=ADMIN_HEADERS
    )
    assert response.status_code == 503 and "SIGAP_MQTT_ADMIN_USERNAME" in response.text
