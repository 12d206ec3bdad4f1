"""The registry over HTTP: device and gateway CRUD, CSV import, first contact (SQLite and PG)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard_api.deps import ApiServices
from devices import profiles
from devices.directory import DeviceDirectory
from devices.profiles import ProfileLibrary
from devices.registry import DeviceRegistry
from ingest.influx import InfluxError
from tests.postgres import both_backends
from tests.unit.conftest import api_client, api_services

pytestmark = both_backends

FIRE: dict[str, Any] = {
    "id": "fire-001",
    "kind": "fire",
    "model": "Sigap FD-2",
    "name": "Pasar Mentaya lt.2",
    "lat": -2.5389,
    "lon": 112.9475,
    "address": "Jl. Antang Kalang",
    "district": "Mentawa Baru Ketapang",
    "zone": "pasar-mentaya",
    "reporting_interval_s": 60,
    "install_date": "2026-11-02",
    "thresholds": {"heat_fixed_c": 62},
}
BIN: dict[str, Any] = {
    "id": "bin-001",
    "kind": "bin",
    "lat": -2.51,
    "lon": 112.95,
    "district": "Baamang",
    "depth_mm": 1100,
    "sensor_offsets": {"distance_mm": -15},
}
LORA: dict[str, Any] = {
    "id": "fire-lora-1",
    "kind": "fire",
    "lat": -2.53,
    "lon": 112.96,
    "network_server": "chirpstack",
    "ns_device_id": "0101010101010101",
    "field_map": {"t": "temp_c", "batt_mv": {"field": "battery_v", "scale": 0.001}},
}
GATEWAY: dict[str, Any] = {"id": "gw-1", "kind": "mqtt", "name": "Pasar", "lat": -2.5, "lon": 113}


class Readings:
    """Stored readings, newest first, as InfluxReadings returns them."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = rows or []
        self.down = False

    async def readings(
        self, device_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        if self.down:
            raise InfluxError("InfluxDB at http://127.0.0.1:1 unreachable: ConnectError()")
        return [r for r in self.rows if r["device_id"] == device_id][:limit]


@pytest.fixture
def directory() -> DeviceDirectory:
    return DeviceDirectory()


@pytest.fixture
def services(sessions: async_sessionmaker[AsyncSession], directory: DeviceDirectory) -> ApiServices:
    return api_services(
        sessions,
        devices=DeviceRegistry(sessions, on_change=directory.upsert),
        readings=Readings(),
    )


@pytest.fixture
async def client(services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(services) as client:
        yield client


async def test_create_get_list_with_all_fields(client: httpx.AsyncClient) -> None:
    for body in (FIRE, BIN, LORA):
        response = await client.post("/api/v1/devices", json=body)
        assert response.status_code == 201, response.text
    got = (await client.get("/api/v1/devices/fire-001")).json()
    assert {k: got[k] for k in FIRE} == FIRE
    assert got["status"] == "active" and got["created_at"] and got["updated_at"] is None
    assert got["last_reading"] is None and got["battery_v"] is None
    lora = (await client.get("/api/v1/devices/fire-lora-1")).json()
    assert lora["field_map"]["batt_mv"] == {"field": "battery_v", "scale": 0.001}
    listed = await client.get("/api/v1/devices", params={"network_server": "chirpstack"})
    assert [d["id"] for d in listed.json()] == ["fire-lora-1"]
    assert [d["id"] for d in (await client.get("/api/v1/devices")).json()] == [
        "bin-001",
        "fire-001",
        "fire-lora-1",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (FIRE | {"lat": 91}, "less than or equal to 90"),
        (BIN | {"depth_mm": None}, "depth_mm is required for a bin"),
        (FIRE | {"status": "broken"}, "'active', 'maintenance' or 'retired'"),
        (FIRE | {"install_date": "kemarin"}, "valid date"),
        (FIRE | {"sensor_offsets": {"heat": 1}}, "'heat' is not a reading field"),
        (LORA | {"ns_device_id": None}, "ns_device_id is required for a LoRaWAN device"),
        (LORA | {"ns_device_id": "dev1"}, "16-hex-digit DevEUI for ChirpStack"),
        (LORA | {"network_server": "tts", "ns_device_id": "Dev_1"}, "lowercase letters"),
        (FIRE | {"ns_device_id": "0101010101010101"}, "ns_device_id needs network_server"),
        (FIRE | {"field_map": {"t": "temp_c"}}, "field_map applies only to LoRaWAN devices"),
        (LORA | {"field_map": {"t": "celsius"}}, "'celsius' is not a reading field"),
        (LORA | {"field_map": {"t": {"field": "temp_c", "scale": 0}}}, "non-zero"),
    ],
)
async def test_validation_messages(
    client: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    response = await client.post("/api/v1/devices", json=body)
    assert response.status_code == 422
    assert message in response.text


async def test_network_server_ids_are_unique_per_server(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/devices", json=LORA)).status_code == 201
    # The same DevEUI in upper case is the same device.
    clash = LORA | {"id": "fire-lora-2", "ns_device_id": "0101010101010101".upper()}
    response = await client.post("/api/v1/devices", json=clash)
    assert response.status_code == 409
    assert "already registered as device 'fire-lora-1'" in response.json()["detail"]
    other_server = clash | {"network_server": "tts"}
    assert (await client.post("/api/v1/devices", json=other_server)).status_code == 201


async def test_patch_put_and_delete(client: httpx.AsyncClient, directory: DeviceDirectory) -> None:
    await client.post("/api/v1/devices", json=BIN)
    patched = await client.patch(
        "/api/v1/devices/bin-001", json={"depth_mm": 1300, "zone": "pasar", "name": "Bin A"}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["depth_mm"] == 1300 and body["zone"] == "pasar" and body["district"] == "Baamang"
    assert body["updated_at"] is not None
    info = directory.get("bin-001")
    assert info is not None and info.depth_mm == 1300  # ingest sees the change at once
    cleared = await client.patch("/api/v1/devices/bin-001", json={"zone": None, "name": None})
    assert cleared.json()["zone"] is None and cleared.json()["name"] == "Bin A"
    # Each change is validated against the whole device.
    no_depth = await client.patch("/api/v1/devices/bin-001", json={"depth_mm": None})
    assert no_depth.status_code == 422 and "depth_mm is required for a bin" in no_depth.text
    bad_lat = await client.patch("/api/v1/devices/bin-001", json={"lat": -100})
    assert bad_lat.status_code == 422 and "greater than or equal to -90" in bad_lat.text
    kind = await client.patch("/api/v1/devices/bin-001", json={"kind": "fire"})
    assert kind.status_code == 422 and "kind cannot change" in kind.text
    assert (await client.patch("/api/v1/devices/bin-001", json={"id": "x"})).status_code == 422
    assert (await client.patch("/api/v1/devices/nope", json={"zone": "a"})).status_code == 404

    replaced = await client.put("/api/v1/devices/bin-001", json=BIN | {"name": "Bin B"})
    assert replaced.status_code == 200 and replaced.json()["zone"] is None
    assert replaced.json()["name"] == "Bin B"
    other = await client.put("/api/v1/devices/bin-001", json=BIN | {"id": "bin-002"})
    assert other.status_code == 422 and "differs" in other.text
    assert (
        await client.put("/api/v1/devices/bin-9", json=BIN | {"id": "bin-9"})
    ).status_code == 404

    retired = await client.delete("/api/v1/devices/bin-001")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    info = directory.get("bin-001")
    assert info is not None and info.retired
    # Kept for history: still listed, still readable, and the id stays taken.
    assert (await client.get("/api/v1/devices/bin-001")).json()["status"] == "retired"
    listed = await client.get("/api/v1/devices", params={"status": "retired"})
    assert [d["id"] for d in listed.json()] == ["bin-001"]
    assert (await client.post("/api/v1/devices", json=BIN)).status_code == 409
    assert (await client.delete("/api/v1/devices/bin-001")).status_code == 200  # idempotent
    assert (await client.delete("/api/v1/devices/nope")).status_code == 404
    back = await client.patch("/api/v1/devices/bin-001", json={"status": "active"})
    assert back.json()["status"] == "active"


async def test_first_contact_shows_last_reading_battery_and_rssi(
    client: httpx.AsyncClient, services: ApiServices
) -> None:
    await client.post("/api/v1/devices", json=FIRE)
    seen = datetime(2026, 11, 27, 3, 0, 5, tzinfo=UTC)
    services.last_seen = {"fire-001": seen}.get
    readings: Readings = services.readings  # type: ignore[assignment]
    readings.rows = [
        {"device_id": "fire-001", "ts": "2026-11-27T03:00:00Z", "temp_c": 30.5, "rssi_dbm": -97},
        {"device_id": "fire-001", "ts": "2026-11-27T02:59:00Z", "temp_c": 30.4, "battery_v": 3.1},
    ]
    got = (await client.get("/api/v1/devices/fire-001")).json()
    assert got["last_seen_at"] == "2026-11-27T03:00:05Z"
    assert got["last_reading"]["temp_c"] == 30.5 and got["last_reading"]["ts"].endswith("03:00:00Z")
    assert got["rssi_dbm"] == -97 and got["battery_v"] == 3.1 and got["battery_pct"] is None
    readings.down = True
    down = await client.get("/api/v1/devices/fire-001")
    assert down.status_code == 200  # the registry answers without InfluxDB
    assert down.json()["last_reading"] is None
    assert "reading store unavailable" in down.json()["readings_error"]


async def test_readings_without_a_reading_store_are_a_503(
    client: httpx.AsyncClient, services: ApiServices
) -> None:
    # Found by the API fuzz tests: with no reading store wired in (readings=None) a
    # registered device's readings were an AttributeError, a 500 (GET /devices/{id} coped).
    await client.post("/api/v1/devices", json=FIRE)
    services.readings = None
    response = await client.get("/api/v1/devices/fire-001/readings")
    assert response.status_code == 503, response.text
    assert "reading store unavailable" in response.json()["detail"]
    assert (await client.get("/api/v1/devices/fire-001")).status_code == 200


async def test_gateways(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/gateways", json=GATEWAY)).status_code == 201
    assert (await client.post("/api/v1/gateways", json=GATEWAY)).status_code == 409
    tts = {"id": "gw-tts", "kind": "tts", "lat": -2.5, "lon": 112.9}
    assert (await client.post("/api/v1/gateways", json=tts)).status_code == 201
    bad = await client.post("/api/v1/gateways", json=GATEWAY | {"id": "g2", "kind": "lora"})
    assert bad.status_code == 422 and "'mqtt', 'tts' or 'chirpstack'" in bad.text
    listed = await client.get("/api/v1/gateways", params={"kind": "tts"})
    assert [g["id"] for g in listed.json()] == ["gw-tts"]
    assert (await client.get("/api/v1/gateways/nope")).status_code == 404

    # A device behind a registered gateway must fit it.
    behind = FIRE | {"gateway_id": "gw-1"}
    assert (await client.post("/api/v1/devices", json=behind)).status_code == 201
    lora_on_mqtt = LORA | {"gateway_id": "gw-1"}
    response = await client.post("/api/v1/devices", json=lora_on_mqtt)
    assert response.status_code == 422 and "is an MQTT gateway" in response.text
    response = await client.post("/api/v1/devices", json=LORA | {"gateway_id": "gw-tts"})
    assert response.status_code == 422 and "is a tts LoRaWAN gateway" in response.text
    devices = (await client.get("/api/v1/gateways/gw-1/devices")).json()
    assert [d["id"] for d in devices] == ["fire-001"]

    renamed = await client.patch("/api/v1/gateways/gw-1", json={"name": "Pasar Mentaya"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Pasar Mentaya"
    assert renamed.json()["kind"] == "mqtt"
    in_use = await client.delete("/api/v1/gateways/gw-1")
    assert in_use.status_code == 409 and "fire-001" in in_use.json()["detail"]
    to_tts = await client.patch("/api/v1/gateways/gw-1", json={"kind": "tts"})
    assert to_tts.status_code == 409
    await client.delete("/api/v1/devices/fire-001")
    retired = await client.delete("/api/v1/gateways/gw-1")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    late = await client.post("/api/v1/devices", json=FIRE | {"id": "f2", "gateway_id": "gw-1"})
    assert late.status_code == 422 and "gateway 'gw-1' is retired" in late.text


async def test_last_seen_is_recorded_for_every_device_in_short_transactions(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from devices.schemas import DeviceCreate

    registry = DeviceRegistry(sessions)
    ids = [f"seen-{i:03d}" for i in range(23)]
    for device_id in ids:
        await registry.create(
            DeviceCreate.model_validate(
                {"id": device_id, "kind": "fire", "lat": -2.5, "lon": 112.9}
            )
        )
    at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    await registry.mark_seen(dict.fromkeys(ids, at), chunk=5)  # five transactions
    found = await registry.get_many(ids)
    assert len(found) == 23 and all(d.last_seen_at == at for d in found)


# An air-quality station (issue #19): PM2.5, and here PM10 and CO, for the regional haze.
AIR: dict[str, Any] = {
    "id": "air-001",
    "kind": "air",
    "model": "PM2.5/PM10/CO station",
    "name": "DLH Kotim",
    "lat": -2.5449,
    "lon": 112.9443,
    "district": "Mentawa Baru Ketapang",
    "reporting_interval_s": 300,
    "sensor_offsets": {"pm10_ugm3": -2.0},
}


async def test_an_air_quality_station_registers_reports_and_gets_a_login(
    client: httpx.AsyncClient, services: ApiServices, directory: DeviceDirectory
) -> None:
    from contract.readings import KIND_CODES
    from devices.provisioning import InMemoryAccounts

    services.accounts = accounts = InMemoryAccounts()
    created = await client.post("/api/v1/devices", json=AIR)
    assert created.status_code == 201, created.text
    assert {k: created.json()[k] for k in AIR} == AIR
    await client.post("/api/v1/devices", json=FIRE)
    listed = await client.get("/api/v1/devices", params={"kind": "air"})
    assert [d["id"] for d in listed.json()] == ["air-001"]
    info = directory.get("air-001")
    assert info is not None and info.kind_code == KIND_CODES["air"] == 3
    # Like a detector's: no bin depth, and a kind that is not one is named with the kinds.
    deep = await client.post("/api/v1/devices", json=AIR | {"id": "air-2", "depth_mm": 900})
    assert deep.status_code == 422 and "depth_mm applies only to bins" in deep.text
    smog = await client.post("/api/v1/devices", json=AIR | {"id": "air-3", "kind": "smog"})
    assert smog.status_code == 422 and "'fire', 'bin' or 'air'" in smog.text
    # Its first readings, as a technician checks them on site.
    readings: Readings = services.readings  # type: ignore[assignment]
    readings.rows = [
        {
            "device_id": "air-001",
            "ts": "2026-09-14T02:00:00Z",
            "pm25_ugm3": 182.5,
            "pm10_ugm3": 240.0,
            "co_ppm": 4.2,
            "battery_v": 12.6,
        },
    ]
    got = (await client.get("/api/v1/devices/air-001")).json()
    assert got["kind"] == "air" and got["battery_v"] == 12.6
    assert {k: got["last_reading"][k] for k in ("pm25_ugm3", "pm10_ugm3", "co_ppm")} == {
        "pm25_ugm3": 182.5,
        "pm10_ugm3": 240.0,
        "co_ppm": 4.2,
    }
    # An MQTT login for its own topics, as a fire detector gets.
    issued = await client.post("/api/v1/devices/air-001/credentials")
    assert issued.status_code == 201, issued.text
    login = issued.json()
    assert login["username"] == "air-001"
    assert "sigap/devices/air-001/up" in login["publish_topics"]
    assert accounts.authenticate("air-001", login["password"])
    fire_login = (await client.post("/api/v1/devices/fire-001/credentials")).json()
    assert [t.replace("fire-001", "ID") for t in fire_login["publish_topics"]] == [
        t.replace("air-001", "ID") for t in login["publish_topics"]
    ]


# Issue #20: device profiles. A LoRaWAN bin sensor of a shipped model.
LDDS75: dict[str, Any] = {
    "id": "bin-ldds-1",
    "kind": "bin",
    "lat": -2.52,
    "lon": 112.95,
    "depth_mm": 1100,
    "network_server": "tts",
    "ns_device_id": "ldds75-pasar-1",
    "profile": "dragino-ldds75",
}
SHIPPED_PROFILES = [
    "dragino-ldds75",
    "dragino-lht65",
    "milesight-em310-udl",
    "netvox-ra02a",
    "sigap",
]


async def test_a_device_registers_with_a_profile(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/devices", json=LDDS75)
    assert created.status_code == 201, created.text
    assert created.json()["profile"] == "dragino-ldds75"
    got = (await client.get("/api/v1/devices/bin-ldds-1")).json()
    assert {k: got[k] for k in LDDS75} == LDDS75
    listed = (await client.get("/api/v1/devices")).json()
    assert [d["profile"] for d in listed] == ["dragino-ldds75"]
    # Profile "sigap" (Sigap's own field names) fits any kind, on Sigap's own topics.
    for body in (FIRE, BIN, AIR):
        response = await client.post("/api/v1/devices", json=body | {"profile": "sigap"})
        assert response.status_code == 201, response.text
        assert response.json()["profile"] == "sigap"
    # Without one, as before.
    plain = await client.post("/api/v1/devices", json=LORA)
    assert plain.status_code == 201 and plain.json()["profile"] is None


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (
            # A bin sensor's profile on a fire detector.
            LORA | {"profile": "dragino-ldds75"},
            ["profile: 'dragino-ldds75' (Dragino LDDS75) is for bin devices, not fire"],
        ),
        (
            # A codec's field names on Sigap's own topics.
            BIN | {"profile": "dragino-ldds75"},
            ["profile: 'dragino-ldds75' maps a LoRaWAN codec's fields: set network_server"],
        ),
        (
            LDDS75 | {"profile": "dragino-ldds99"},
            ["profile: unknown profile 'dragino-ldds99'", f"known: {', '.join(SHIPPED_PROFILES)}"],
        ),
        (LDDS75 | {"profile": "x" * 65}, ["at most 64 characters"]),
    ],
)
async def test_a_profile_must_fit_the_device(
    client: httpx.AsyncClient, body: dict[str, Any], messages: list[str]
) -> None:
    response = await client.post("/api/v1/devices", json=body)
    assert response.status_code == 422, response.text
    for message in messages:
        assert message in response.text
    assert (await client.get("/api/v1/devices")).json() == []


async def test_patch_changes_and_clears_the_profile(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/devices", json=LDDS75)).status_code == 201
    other = await client.patch(
        "/api/v1/devices/bin-ldds-1", json={"profile": "milesight-em310-udl"}
    )
    assert other.status_code == 200, other.text
    assert other.json()["profile"] == "milesight-em310-udl"
    # Unchanged by a PATCH that does not name it.
    renamed = await client.patch("/api/v1/devices/bin-ldds-1", json={"name": "Bin pasar"})
    assert renamed.json()["profile"] == "milesight-em310-udl"
    # The merged device is checked as a whole: the wrong kind, or off LoRaWAN.
    fire = await client.patch("/api/v1/devices/bin-ldds-1", json={"profile": "netvox-ra02a"})
    assert fire.status_code == 422 and "is for fire devices, not bin" in fire.text
    off_lorawan = await client.patch(
        "/api/v1/devices/bin-ldds-1", json={"network_server": None, "ns_device_id": None}
    )
    assert off_lorawan.status_code == 422 and "set network_server" in off_lorawan.text
    unknown = await client.patch("/api/v1/devices/bin-ldds-1", json={"profile": "nope"})
    assert unknown.status_code == 422 and "unknown profile 'nope'" in unknown.text
    cleared = await client.patch("/api/v1/devices/bin-ldds-1", json={"profile": None})
    assert cleared.status_code == 200 and cleared.json()["profile"] is None
    got = (await client.get("/api/v1/devices/bin-ldds-1")).json()
    assert got["profile"] is None and got["name"] == "Bin pasar"
    # PUT replaces it like every other field.
    put = await client.put("/api/v1/devices/bin-ldds-1", json=LDDS75)
    assert put.status_code == 200 and put.json()["profile"] == "dragino-ldds75"


async def test_a_device_whose_profile_was_removed_stays_usable(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An operator's own profile, registered, then its file removed (and Sigap restarted).
    (tmp_path / "acme-bin-1.toml").write_text('vendor = "Acme"\nmodel = "Bin 1"\nkind = "bin"\n')
    monkeypatch.setattr(profiles, "_installed", [ProfileLibrary.load(profiles.SHIPPED, tmp_path)])
    body = BIN | {"profile": "acme-bin-1"}
    assert (await client.post("/api/v1/devices", json=body)).status_code == 201
    monkeypatch.setattr(profiles, "_installed", [ProfileLibrary.load(profiles.SHIPPED)])
    got = await client.get("/api/v1/devices/bin-001")
    assert got.status_code == 200 and got.json()["profile"] == "acme-bin-1"
    assert (await client.get("/api/v1/devices")).json()[0]["profile"] == "acme-bin-1"
    # A change is checked: it must name an installed profile, or none.
    stale = await client.patch("/api/v1/devices/bin-001", json={"name": "Bin A"})
    assert stale.status_code == 422 and "unknown profile 'acme-bin-1'" in stale.text
    retired = await client.delete("/api/v1/devices/bin-001")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    cleared = await client.patch("/api/v1/devices/bin-001", json={"profile": None})
    assert cleared.status_code == 200 and cleared.json()["profile"] is None
    assert cleared.json()["status"] == "retired"


async def test_profiles_are_listed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/profiles")
    assert response.status_code == 200, response.text
    listed = response.json()["profiles"]
    assert [p["id"] for p in listed] == SHIPPED_PROFILES
    assert {p["id"]: (p["vendor"], p["model"], p["kind"]) for p in listed} == {
        "dragino-ldds75": ("Dragino", "LDDS75", "bin"),
        "dragino-lht65": ("Dragino", "LHT65", "fire"),
        "milesight-em310-udl": ("Milesight", "EM310-UDL", "bin"),
        "netvox-ra02a": ("Netvox", "RA02A", "fire"),
        "sigap": ("Sigap", "Sigap JSON", None),
    }
    # Each as its profile shows itself: only the keys a field target sets.
    assert listed == [p.public() for p in profiles.library()]
    ldds = listed[0]
    assert ldds["fields"]["distance"] == {"field": "distance_mm", "unit": "mm"}
    assert ldds["status"]["distance"] == {"No Sensor": "fault", "Invalid Reading": "fault"}
    assert ldds["reporting_interval_s"] == 1200 and ldds["mounting_offset_mm"] is None
    em310 = await client.get("/api/v1/profiles/milesight-em310-udl")
    assert em310.status_code == 200
    assert em310.json() == profiles.library().check("milesight-em310-udl", "bin", True).public()
    assert em310.json()["status"]["tilt"] == {"normal": {"tilt_deg": 0}, "tilt": {"tilt_deg": 90}}
    missing = await client.get("/api/v1/profiles/nope")
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        f"profile 'nope' is not installed (known: {', '.join(SHIPPED_PROFILES)})"
    )


async def test_any_role_may_read_the_profiles(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from dashboard_api.access import Role, TokenCreate, TokenStore

    issued = await TokenStore(sessions).issue(TokenCreate(name="crew-1", role=Role.crew), "t")
    crew = {"Authorization": f"Bearer {issued.token}"}
    assert (await client.get("/api/v1/profiles", headers=crew)).status_code == 200
    assert (await client.get("/api/v1/profiles/sigap", headers=crew)).status_code == 200
    anonymous = await client.get("/api/v1/profiles", headers={"Authorization": ""})
    assert anonymous.status_code == 401
