"""The HTTP API in-process on SQLite and PostgreSQL: registry, validation, alerts, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard_api.app import create_app
from dashboard_api.deps import ApiServices
from devices.registry import DeviceRegistry
from dispatch.broadcast import AlertBroadcaster
from dispatch.store import AlertStore
from ingest.rejected import Rejected, RejectedStore
from rules.events import Action, AlertEvent, Severity
from tests.postgres import both_backends
from tests.unit.conftest import ADMIN_HEADERS, auth_for_tests

# The registry and alert store run on SQLite and PostgreSQL alike.
pytestmark = both_backends


class FakeReadings:
    """Records the query it was asked (InfluxDB itself is covered by the integration tier)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, datetime | None, datetime | None, int]] = []

    async def readings(
        self, device_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        self.asked.append((device_id, since, until, limit))
        return [{"ts": "2026-11-27T10:00:00Z", "temp_c": 30.0}]


@pytest.fixture
async def services(sessions: async_sessionmaker[AsyncSession]) -> ApiServices:
    health: dict[str, str | None] = {"mqtt": None, "sql": None, "influxdb": None}

    async def readiness() -> dict[str, str | None]:
        return dict(health)

    services = ApiServices(
        devices=DeviceRegistry(sessions),
        alerts=AlertStore(sessions),
        broadcaster=AlertBroadcaster(),
        readings=FakeReadings(),
        rejected=RejectedStore(sessions),
        readiness=readiness,
        last_seen=lambda _id: None,
        auth=auth_for_tests(sessions),
    )
    services.health = health  # type: ignore[attr-defined]
    return services


@pytest.fixture
async def client(services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=ADMIN_HEADERS
    ) as client:
        yield client


FIRE = {
    "id": "fire-001",
    "kind": "fire",
    "name": "Pasar Mentaya lt.2",
    "lat": -2.5389,
    "lon": 112.9475,
    "district": "Mentawa Baru Ketapang",
    "zone": "pasar-mentaya",
}


async def test_register_get_and_list(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/devices", json=FIRE)
    assert response.status_code == 201, response.text
    assert response.json()["created_at"]
    bin_ = {
        "id": "bin-001",
        "kind": "bin",
        "lat": -2.51,
        "lon": 112.95,
        "district": "Baamang",
        "depth_mm": 1100,
    }
    assert (await client.post("/api/v1/devices", json=bin_)).status_code == 201
    got = (await client.get("/api/v1/devices/fire-001")).json()
    assert got["zone"] == "pasar-mentaya" and got["depth_mm"] is None
    assert [d["id"] for d in (await client.get("/api/v1/devices")).json()] == [
        "bin-001",
        "fire-001",
    ]
    assert [d["id"] for d in (await client.get("/api/v1/devices?kind=bin")).json()] == ["bin-001"]
    assert [
        d["id"]
        for d in (
            await client.get("/api/v1/devices", params={"district": "Mentawa Baru Ketapang"})
        ).json()
    ] == ["fire-001"]


async def test_duplicate_and_missing(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/devices", json=FIRE)
    again = await client.post("/api/v1/devices", json=FIRE)
    assert again.status_code == 409 and "already registered" in again.json()["detail"]
    missing = await client.get("/api/v1/devices/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lat": -95}, "greater than or equal to -90"),
        ({"lon": 200}, "less than or equal to 180"),
        ({"kind": "toaster"}, "'fire', 'bin' or 'air'"),
        ({"id": "a/b"}, "pattern"),
        ({"id": "sigap/#"}, "pattern"),
        ({"kind": "bin"}, "depth_mm is required for a bin"),
        ({"depth_mm": 900}, "depth_mm applies only to bins"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
async def test_validation_errors_say_what_is_wrong(
    client: httpx.AsyncClient, change: dict[str, Any], message: str
) -> None:
    response = await client.post("/api/v1/devices", json=FIRE | change)
    assert response.status_code == 422
    assert message in response.text


async def test_readings_query(client: httpx.AsyncClient, services: ApiServices) -> None:
    await client.post("/api/v1/devices", json=FIRE)
    response = await client.get(
        "/api/v1/devices/fire-001/readings",
        params={"since": "2026-11-27T00:00:00Z", "until": "2026-11-27T12:00:00+07:00", "limit": 5},
    )
    assert response.status_code == 200 and response.json()[0]["temp_c"] == 30.0
    assert isinstance(services.readings, FakeReadings)
    assert services.readings.asked == [
        ("fire-001", datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 27, 5, tzinfo=UTC), 5)
    ]
    naive = await client.get(
        "/api/v1/devices/fire-001/readings", params={"since": "2026-11-27T00:00:00"}
    )
    assert naive.status_code == 422 and "UTC offset" in naive.text
    backwards = await client.get(
        "/api/v1/devices/fire-001/readings",
        params={"since": "2026-11-28T00:00:00Z", "until": "2026-11-27T00:00:00Z"},
    )
    assert backwards.status_code == 422
    assert (await client.get("/api/v1/devices/ghost/readings")).status_code == 404


async def test_alerts_list_filters_and_get(
    client: httpx.AsyncClient, services: ApiServices
) -> None:
    t0 = 1_790_000_000_000
    await services.alerts.apply(
        [
            AlertEvent(
                Action.raise_,
                "fire",
                "fire.alarm",
                "fire",
                "fire-001",
                0,
                t0,
                Severity.critical,
                "hot",
            ),
            AlertEvent(
                Action.raise_,
                "bin.fill",
                "bin.full",
                "bin",
                "bin-001",
                1,
                t0,
                Severity.minor,
                "full",
            ),
            AlertEvent(
                Action.clear,
                "bin.fill",
                "bin.full",
                "bin",
                "bin-001",
                1,
                t0 + 1,
                Severity.minor,
                "emptied",
            ),
        ]
    )
    everything = (await client.get("/api/v1/alerts")).json()
    assert {a["kind"] for a in everything} == {"fire.alarm", "bin.full"}
    active = (await client.get("/api/v1/alerts", params={"active": "true"})).json()
    assert [a["kind"] for a in active] == ["fire.alarm"]
    resolved = (await client.get("/api/v1/alerts", params={"status": "resolved"})).json()
    assert [a["device_id"] for a in resolved] == ["bin-001"]
    fire = (await client.get("/api/v1/alerts", params={"category": "fire"})).json()[0]
    one = await client.get(f"/api/v1/alerts/{fire['id']}")
    assert one.json()["reason"] == "hot" and one.json()["raised_at"].startswith("2026-09-21")
    assert (await client.get("/api/v1/alerts/99999")).status_code == 404
    assert (await client.get("/api/v1/alerts", params={"status": "nonsense"})).status_code == 422


async def test_rejected_list(client: httpx.AsyncClient, services: ApiServices) -> None:
    await services.rejected.add_many(
        [
            Rejected(
                datetime.now(UTC),
                "sigap/devices/x/up",
                "not_json",
                "not valid JSON",
                b"\xff\xfe bad",
                "x",
            ),
            Rejected(
                datetime.now(UTC),
                "sigap/devices/y/up",
                "unknown_device",
                "not registered",
                b"{}",
                "y",
            ),
        ]
    )
    listed = (await client.get("/api/v1/ingest/rejected")).json()
    assert [r["reason"] for r in listed] == ["unknown_device", "not_json"]
    assert listed[1]["raw"].endswith(" bad")  # invalid UTF-8 shown, not an error
    only = (await client.get("/api/v1/ingest/rejected", params={"reason": "not_json"})).json()
    assert [r["device_id"] for r in only] == ["x"]


async def test_health_and_readiness(client: httpx.AsyncClient, services: ApiServices) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    services.health["influxdb"] = "InfluxDB unreachable"  # type: ignore[attr-defined]
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "mqtt": "ok",
        "sql": "ok",
        "influxdb": "InfluxDB unreachable",
    }
    assert "sigap_ingest_readings_total" in (await client.get("/metrics")).text


async def test_readings_when_influxdb_is_down(
    client: httpx.AsyncClient, services: ApiServices
) -> None:
    from ingest.influx import InfluxError

    async def down(*_args: object) -> list[dict[str, Any]]:
        raise InfluxError("InfluxDB at http://127.0.0.1:1 unreachable: ConnectError()")

    await client.post("/api/v1/devices", json=FIRE)
    assert services.readings is not None
    services.readings.readings = down  # type: ignore[method-assign,assignment]
    response = await client.get("/api/v1/devices/fire-001/readings")
    assert response.status_code == 503
    assert "reading store unavailable" in response.json()["detail"]


async def test_bins_show_fill_rate_and_prediction(
    client: httpx.AsyncClient, services: ApiServices
) -> None:
    from contract.bins import BinStatus

    statuses = {
        "bin-001": BinStatus(fill_pct=62.04, rate_pct_per_h=3.456, hours_to_full=8.1, level=0),
        "bin-002": BinStatus(fill_pct=91.0, rate_pct_per_h=None, hours_to_full=0.0, level=2),
    }
    services.bin_status = statuses.get
    for i in (1, 2, 3):
        body = {
            "id": f"bin-00{i}",
            "kind": "bin",
            "lat": -2.5,
            "lon": 112.9,
            "district": "Baamang" if i < 3 else "Seranau",
            "depth_mm": 1000,
        }
        assert (await client.post("/api/v1/devices", json=body)).status_code == 201
    await client.post("/api/v1/devices", json=FIRE)
    bins = (await client.get("/api/v1/bins")).json()
    assert [b["id"] for b in bins] == ["bin-001", "bin-002", "bin-003"]  # no fire detectors
    assert bins[0]["fill_pct"] == 62.0 and bins[0]["fill_rate_pct_per_h"] == 3.46
    assert bins[0]["hours_to_full"] == 8.1 and bins[0]["level"] == "ok"
    assert bins[2]["fill_pct"] is None and bins[2]["level"] is None  # no reading yet
    soon = (await client.get("/api/v1/bins", params={"full_within_h": 10})).json()
    assert [b["id"] for b in soon] == ["bin-001", "bin-002"]
    assert [
        b["id"] for b in (await client.get("/api/v1/bins", params={"min_fill_pct": 90})).json()
    ] == ["bin-002"]
    assert (await client.get("/api/v1/bins/bin-002")).json()["level"] == "full"
    assert (await client.get("/api/v1/bins/fire-001")).status_code == 404


async def test_incidents(client: httpx.AsyncClient, services: ApiServices) -> None:
    t0 = 1_790_000_000_000
    await services.alerts.apply(
        [
            AlertEvent(
                Action.raise_,
                "fire",
                "fire.confirmed",
                "fire",
                "a",
                0,
                t0,
                Severity.critical,
                "confirmed",
                partners=("b",),
                zone="pasar",
            ),
            AlertEvent(
                Action.raise_,
                "fire",
                "fire.confirmed",
                "fire",
                "b",
                1,
                t0,
                Severity.critical,
                "confirmed",
                partners=("a",),
                zone="pasar",
            ),
        ]
    )
    (incident,) = (await client.get("/api/v1/incidents")).json()
    assert incident["zone"] == "pasar" and sorted(incident["device_ids"]) == ["a", "b"]
    one = await client.get(f"/api/v1/incidents/{incident['id']}")
    assert one.json() == incident
    assert (await client.get("/api/v1/incidents/999")).status_code == 404


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"thresholds": {"heat_fixed_c": "hot"}}, "heat_fixed_c must be a number"),
        ({"thresholds": {"no_such": 1}}, "unknown rule parameter 'no_such'"),
        ({"thresholds": {"heat_class": "Z9"}}, "unknown EN 54-5 class"),
        ({"rule_class": "kitchen"}, "unknown rule class 'kitchen'"),
        ({"reporting_interval_s": 0}, "greater than 0"),
    ],
)
async def test_rule_settings_are_validated(
    client: httpx.AsyncClient, services: ApiServices, change: dict[str, Any], message: str
) -> None:
    from rules.params import RulesConfig

    def check(device: Any) -> None:
        from contract.thresholds import RulesConfigError

        try:
            RulesConfig().params_for(
                device.id, device.kind.value, device.rule_class, device.thresholds
            )
        except RulesConfigError as exc:
            raise ValueError(str(exc)) from None

    services.check_device = check
    response = await client.post("/api/v1/devices", json=FIRE | change)
    assert response.status_code == 422, response.text
    assert message in response.text
    ok = FIRE | {"thresholds": {"heat_class": "B", "smoke_alarm_pct_m": 12}}
    assert (await client.post("/api/v1/devices", json=ok)).status_code == 201
