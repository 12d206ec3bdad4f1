"""Internal addresses and third-party error text: for an admin and the log only (#22.7)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.timeutil import to_ms
from dashboard_api.deps import ApiServices
from devices.provisioning import BrokerUnavailableError, Credentials, InMemoryAccounts
from dispatch.webhooks import WebhookOutbox
from ingest.influx import InfluxError
from tests.unit.conftest import ADMIN_HEADERS, api_client, api_services
from tests.unit.test_access import issue

INFLUX = "http://10.20.30.40:8086"  # the internal address no crew or technician may read
DEVICE = {"id": "fire-1", "kind": "fire", "lat": -2.54, "lon": 112.95}
MAX_NS = 2**63 - 1


class Influx:
    """Stored readings as InfluxDB answers: down on demand, a parser error out of range."""

    def __init__(self) -> None:
        self.down = False

    async def readings(
        self, device_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        if self.down:
            raise InfluxError(f"InfluxDB at {INFLUX} unreachable: ConnectError('refused')")
        for moment in (since, until):
            if moment is not None and abs(to_ms(moment) * 1_000_000) > MAX_NS:
                raise InfluxError(
                    f"InfluxDB at {INFLUX}: error parsing query: unable to parse time", 400
                )
        return []


class DownBroker(InMemoryAccounts):
    """A broker whose dynamic security plugin does not answer."""

    async def provision_device(self, device_id: str) -> Credentials:
        """Always unreachable, naming the broker's internal address."""
        raise BrokerUnavailableError("admin connection to 10.20.30.41:8883 failed: refused")


@pytest.fixture
def influx() -> Influx:
    return Influx()


@pytest.fixture
async def services(sessions: async_sessionmaker[AsyncSession], influx: Influx) -> ApiServices:
    webhooks = WebhookOutbox(sessions)
    await webhooks.load()

    async def readiness() -> dict[str, str | None]:
        return {"sql": None, "influxdb": None if not influx.down else f"{INFLUX} unreachable"}

    return api_services(
        sessions,
        readings=influx,
        readiness=readiness,
        accounts=DownBroker(),
        webhooks=webhooks,
    )


@pytest.fixture
async def client(services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(services) as client:
        assert (await client.post("/api/v1/devices", json=DEVICE)).status_code == 201
        client.headers.clear()  # each request says who it is
        yield client


async def test_influxdb_errors_show_their_detail_to_admin_only(
    client: httpx.AsyncClient, influx: Influx, caplog: pytest.LogCaptureFixture
) -> None:
    influx.down = True
    for role in ("crew", "technician", "dispatcher"):
        who = await issue(client, role)
        detail = (await client.get("/api/v1/devices/fire-1", headers=who)).json()
        assert detail["readings_error"].startswith("reading store unavailable")
        readings = await client.get("/api/v1/devices/fire-1/readings", headers=who)
        assert readings.status_code == 503
        assert readings.json()["detail"].startswith("reading store unavailable")
        ready = await client.get("/readyz", headers=who)
        assert ready.status_code == 503 and ready.json()["checks"]["influxdb"] == "failing"
        for response in (ready, readings):
            assert "10.20.30.40" not in response.text and "ConnectError" not in response.text
        assert "10.20.30.40" not in str(detail)
    admin = await client.get("/api/v1/devices/fire-1/readings", headers=ADMIN_HEADERS)
    assert admin.status_code == 503 and "10.20.30.40" in admin.json()["detail"]
    detail = (await client.get("/api/v1/devices/fire-1", headers=ADMIN_HEADERS)).json()
    assert "ConnectError" in detail["readings_error"]
    ready = (await client.get("/readyz", headers=ADMIN_HEADERS)).json()
    assert "10.20.30.40" in ready["checks"]["influxdb"]
    assert "10.20.30.40" in caplog.text  # the log keeps what the response leaves out


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"until": "9999-12-31T00:00:00Z"}, "until"),
        ({"since": "1600-01-01T00:00:00Z"}, "since"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"until": "2262-04-12T00:00:00Z"}, "until"),
    ],
)
async def test_readings_outside_what_influxdb_can_hold_are_a_clean_422(
    client: httpx.AsyncClient, query: dict[str, str], name: str
) -> None:
    for headers in (await issue(client, "crew"), ADMIN_HEADERS):
        response = await client.get(
            "/api/v1/devices/fire-1/readings", params=query, headers=headers
        )
        assert response.status_code == 422, response.text
        assert f"{name} must lie between 1677-09-22 and 2262-04-11" in response.text
        assert "parse" not in response.text and "10.20.30.40" not in response.text
    fine = {"since": "1970-01-01T00:00:00Z", "until": "2262-04-10T00:00:00Z"}
    response = await client.get("/api/v1/devices/fire-1/readings", params=fine, headers=headers)
    assert response.status_code == 200


async def test_broker_errors_show_their_detail_to_admin_only(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    tech = await issue(client, "technician")
    caplog.set_level(logging.WARNING)
    response = await client.post("/api/v1/devices/fire-1/credentials", headers=tech)
    assert response.status_code == 503 and "10.20.30.41" not in response.text
    assert "not answering" in response.json()["detail"]
    admin = await client.post("/api/v1/devices/fire-1/credentials", headers=ADMIN_HEADERS)
    assert admin.status_code == 503 and "10.20.30.41" in admin.text
    assert "10.20.30.41" in caplog.text


async def test_webhook_secret_hint_is_for_admin_only(client: httpx.AsyncClient) -> None:
    secret = "a-shared-secret-of-some-length"
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": "https://93.184.215.14/hook", "secret": secret},
        headers=ADMIN_HEADERS,
    )
    assert created.status_code == 201 and created.json()["secret_hint"] == "…" + secret[-4:]
    hook = created.json()["id"]
    for role in ("crew", "technician", "dispatcher"):
        who = await issue(client, role)
        for path in ("/api/v1/webhooks", f"/api/v1/webhooks/{hook}"):
            response = await client.get(path, headers=who)
            assert response.status_code == 200 and secret[-4:] not in response.text
            assert '"secret_hint":null' in response.text
    listed = await client.get("/api/v1/webhooks", headers=ADMIN_HEADERS)
    assert listed.json()[0]["secret_hint"] == "…" + secret[-4:]


async def test_metrics_are_open_like_the_probes(client: httpx.AsyncClient) -> None:
    # README: /healthz, /readyz and /metrics are open, for probes and scrapers.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status_code == 200, path
    assert "sigap_" in (await client.get("/metrics")).text
