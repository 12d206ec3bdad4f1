"""Bulk registration from CSV: all rows or none, with an error per bad row; and its command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from dashboard_api.app import create_app
from dashboard_api.deps import ApiServices
from dashboard_api.limits import BodyLimits
from devices.directory import DeviceDirectory
from devices.registry import DeviceRegistry
from sigap import cli
from tests.postgres import both_backends
from tests.unit.conftest import ADMIN_HEADERS, api_client, api_services

HEADER = (
    "id,kind,name,lat,lon,address,district,zone,gateway_id,depth_mm,reporting_interval_s,"
    "install_date,status,thresholds,network_server,ns_device_id,field_map\n"
)
GOOD = (
    "\ufeff"  # a byte-order mark, as Excel writes it
    + HEADER
    + 'fire-101,fire,Ruko A,-2.5401,112.9503,"Jl. Ahmad Yani 5, Sampit",Baamang,ruko-a,,,60,'
    + '2026-11-01,active,"{""heat_fixed_c"": 62}",,,\n'
    + "bin-101,bin,,-2.5302,112.9411,,Baamang,,,1100,600,,maintenance,,,,\n"
    + "lora-101,fire,,-2.51,112.93,,Seranau,,,,,,,,chirpstack,0101010101010101,"
    + '"{""t"": ""temp_c""}"\n'
    + "\n"
)


@pytest.fixture
def directory() -> DeviceDirectory:
    return DeviceDirectory()


@pytest.fixture
def services(sessions: async_sessionmaker[AsyncSession], directory: DeviceDirectory) -> ApiServices:
    return api_services(sessions, devices=DeviceRegistry(sessions, on_change=directory.upsert))


@pytest.fixture
async def client(services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(services) as client:
        yield client


async def post_csv(client: httpx.AsyncClient, text: str | bytes) -> httpx.Response:
    body = text.encode() if isinstance(text, str) else text
    return await client.post(
        "/api/v1/devices/import", content=body, headers={"Content-Type": "text/csv"}
    )


def problems(response: httpx.Response) -> list[tuple[int, str | None]]:
    assert response.status_code == 422, response.text
    return [(e["row"], e["field"]) for e in response.json()["detail"]["errors"]]


@both_backends
async def test_import_registers_every_row(
    client: httpx.AsyncClient, directory: DeviceDirectory
) -> None:
    response = await post_csv(client, GOOD)
    assert response.status_code == 201, response.text
    assert response.json() == {"rows": 3, "created": 3, "errors": []}
    fire = (await client.get("/api/v1/devices/fire-101")).json()
    assert fire["address"] == "Jl. Ahmad Yani 5, Sampit" and fire["install_date"] == "2026-11-01"
    assert fire["thresholds"] == {"heat_fixed_c": 62} and fire["reporting_interval_s"] == 60
    bin_ = (await client.get("/api/v1/devices/bin-101")).json()
    assert bin_["status"] == "maintenance" and bin_["zone"] is None and bin_["name"] == ""
    assert len(directory) == 3  # ingest knows them without a restart
    info = directory.find_lorawan("chirpstack", ["0101010101010101"])
    assert info is not None and info.id == "lora-101"


@both_backends
async def test_one_bad_row_imports_nothing_and_every_bad_row_is_reported(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/api/v1/devices", json=_existing())).status_code == 201
    text = (
        HEADER
        + "ok-1,fire,,-2.5,112.9,,,,,,,,,,,,\n"  # row 2: fine
        + "far-1,fire,,-95,112.9,,,,,,,,,,,,\n"  # row 3: latitude
        + "bin-9,bin,,-2.5,112.9,,,,,,,,,,,,\n"  # row 4: no depth
        + "ok-1,fire,,-2.5,112.9,,,,,,,,,,,,\n"  # row 5: repeated id
        + "old-1,fire,,-2.5,112.9,,,,,,,,,,,,\n"  # row 6: already registered
        + 'js-1,fire,,-2.5,112.9,,,,,,,,,"{heat: 1}",,,\n'  # row 7: JSON
        + "k-1,toaster,,-2.5,112.9,,,,,,,,,,,,\n"  # row 8: kind
        + "l-1,fire,,-2.5,112.9,,,,,,,,,,chirpstack,0101010101010101,\n"  # row 9
        + "l-2,fire,,-2.5,112.9,,,,,,,,,,chirpstack,0101010101010101,\n"  # row 10: same EUI
        + "short,fire,-2.5\n"  # row 11: too few cells
    )
    response = await post_csv(client, text)
    assert problems(response) == [
        (3, "lat"),
        (4, "depth_mm"),
        (5, "id"),
        (6, "id"),
        (7, "thresholds"),
        (8, "kind"),
        (10, "ns_device_id"),
        (11, None),
    ]
    errors = {e["row"]: e["message"] for e in response.json()["detail"]["errors"]}
    assert "greater than or equal to -90" in errors[3]
    assert "depth_mm is required for a bin" in errors[4]
    assert "repeated (first on row 2)" in errors[5]
    assert "'old-1' is already registered" in errors[6]
    assert "not valid JSON" in errors[7]
    assert "'fire', 'bin' or 'air'" in errors[8]
    assert "first on row 9" in errors[10]
    assert "3 cells, but the header has 17 columns" in errors[11]
    assert response.json()["detail"]["created"] == 0
    listed = [d["id"] for d in (await client.get("/api/v1/devices")).json()]
    assert listed == ["old-1"]  # nothing from the file


def _existing() -> dict[str, Any]:
    return {"id": "old-1", "kind": "fire", "lat": -2.5, "lon": 112.9}


async def test_header_and_file_problems(client: httpx.AsyncClient) -> None:
    unknown = await post_csv(client, "id,kind,lat,lon,colour\nf,fire,1,1,red\n")
    assert problems(unknown) == [(1, "colour")]
    assert "unknown column 'colour'" in unknown.text
    missing = await post_csv(client, "id,kind,lat\nf,fire,1\n")
    assert problems(missing) == [(1, "lon")] and "required column 'lon'" in missing.text
    assert problems(await post_csv(client, "")) == [(1, None)]
    assert problems(await post_csv(client, "id,kind,lat,lon\n\n")) == [(2, None)]
    not_text = await post_csv(client, b"id,kind,lat,lon\n\xff\xfe,fire,1,1\n")
    assert problems(not_text) == [(1, None)] and "not UTF-8" in not_text.text


async def test_semicolon_files_and_rule_checks(
    client: httpx.AsyncClient, services: ApiServices
) -> None:
    def check(device: Any) -> None:
        if device.rule_class not in (None, "kitchen"):
            raise ValueError(f"unknown rule class {device.rule_class!r}")

    services.check_device = check
    text = "id;kind;lat;lon;rule_class\nf-1;fire;-2.5;112.9;kitchen\nf-2;fire;-2.5;112.9;oven\n"
    response = await post_csv(client, text)
    assert problems(response) == [(3, "rule_class")]
    assert "unknown rule class 'oven'" in response.text
    fixed = await post_csv(client, text.replace("oven", "kitchen"))
    assert fixed.status_code == 201 and fixed.json()["created"] == 2


async def test_oversized_import(services: ApiServices) -> None:
    app = create_app(services=services, limits=BodyLimits(imports=100))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=ADMIN_HEADERS
    ) as client:
        response = await post_csv(client, GOOD)
    assert response.status_code == 413 and "split it" in response.text


class FakePost:
    """Stands in for httpx.post: records the request, answers as the API would."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.response = httpx.Response(status, json=body)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, *, content: bytes, headers: dict[str, str], **_: Any) -> Any:
        self.calls.append((url, content, headers))
        return self.response


def test_cli_prints_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "devices.csv"
    file.write_text(GOOD)
    runner = CliRunner()
    report = {
        "rows": 3,
        "created": 0,
        "errors": [{"row": 3, "field": "lat", "message": "Input should be less than 90"}],
    }
    fake = FakePost(422, {"detail": report})
    monkeypatch.setattr(httpx, "post", fake)
    result = runner.invoke(
        cli.app, ["devices", "import", str(file), "--api", "http://sigap:8000/", "--token", "T"]
    )
    assert result.exit_code == 1, result.output
    assert "nothing imported" in result.output and "less than 90" in result.output
    ((url, content, headers),) = fake.calls
    assert url == "http://sigap:8000/api/v1/devices/import" and content == file.read_bytes()
    assert headers["Authorization"] == "Bearer T" and headers["Content-Type"] == "text/csv"

    monkeypatch.setattr(httpx, "post", FakePost(201, {"rows": 3, "created": 3, "errors": []}))
    result = runner.invoke(cli.app, ["devices", "import", str(file), "--api", "http://sigap"])
    assert result.exit_code == 0 and "imported 3 devices" in result.output

    missing = runner.invoke(cli.app, ["devices", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2


@both_backends
async def test_air_quality_stations_import_like_the_other_kinds(
    client: httpx.AsyncClient, directory: DeviceDirectory
) -> None:
    # Issue #19: stations of the provincial DLH network, in a spreadsheet with detectors.
    text = (
        HEADER
        + "air-101,air,DLH Kotim,-2.5449,112.9443,,Mentawa Baru Ketapang,,,,300,,,,,,\n"
        + "air-102,air,Puskesmas Baamang,-2.5120,112.9630,,Baamang,,,,300,,,,,,\n"
        + "fire-201,fire,,-2.5401,112.9503,,Baamang,ruko-a,,,60,,,,,,\n"
        + "air-103,air,,-2.53,112.95,,Baamang,,,900,,,,,,,\n"  # row 5: a depth is for bins
    )
    refused = await post_csv(client, text)
    assert problems(refused) == [(5, "depth_mm")]
    assert "depth_mm applies only to bins" in refused.text
    response = await post_csv(client, text.rsplit("air-103", 1)[0])
    assert response.status_code == 201, response.text
    assert response.json() == {"rows": 3, "created": 3, "errors": []}
    listed = (await client.get("/api/v1/devices", params={"kind": "air"})).json()
    assert [(d["id"], d["district"]) for d in listed] == [
        ("air-101", "Mentawa Baru Ketapang"),
        ("air-102", "Baamang"),
    ]
    info = directory.get("air-102")
    assert info is not None and info.kind == "air"


@both_backends
async def test_devices_import_with_their_profiles(client: httpx.AsyncClient) -> None:
    # Issue #20: a `profile` column; an empty cell is none.
    header = "id,kind,lat,lon,depth_mm,network_server,ns_device_id,profile\n"
    text = (
        header
        + "bin-201,bin,-2.53,112.94,1100,tts,ldds75-bin-201,dragino-ldds75\n"
        + "fire-301,fire,-2.54,112.95,,,,sigap\n"
        + "fire-302,fire,-2.54,112.95,,,,\n"
        + "bin-202,bin,-2.53,112.94,1100,tts,ldds75-bin-202,dragino-ldds76\n"  # row 5
        + "fire-303,fire,-2.54,112.95,,tts,lht65-fire-303,dragino-ldds75\n"  # row 6
        + "bin-203,bin,-2.53,112.94,1100,,,milesight-em310-udl\n"  # row 7
    )
    refused = await post_csv(client, text)
    assert problems(refused) == [(5, "profile"), (6, "profile"), (7, "profile")]
    errors = {e["row"]: e["message"] for e in refused.json()["detail"]["errors"]}
    assert errors[5] == (
        "profile: unknown profile 'dragino-ldds76' (known: dragino-ldds75, dragino-lht65, "
        "milesight-em310-udl, netvox-ra02a, sigap)"
    )
    assert "is for bin devices, not fire" in errors[6]
    assert "set network_server" in errors[7]
    fixed = text.replace("dragino-ldds76", "dragino-ldds75").replace(
        "lht65-fire-303,dragino-ldds75", "lht65-fire-303,dragino-lht65"
    )
    fixed = fixed.replace(
        "1100,,,milesight-em310-udl", "1100,tts,em310-bin-203,milesight-em310-udl"
    )
    response = await post_csv(client, fixed)
    assert response.status_code == 201, response.text
    assert response.json() == {"rows": 6, "created": 6, "errors": []}
    listed = (await client.get("/api/v1/devices")).json()
    assert {d["id"]: d["profile"] for d in listed} == {
        "bin-201": "dragino-ldds75",
        "bin-202": "dragino-ldds75",
        "bin-203": "milesight-em310-udl",
        "fire-301": "sigap",
        "fire-302": None,
        "fire-303": "dragino-lht65",
    }
