"""CAP over HTTP: one alert, one incident, and the Atom feed of fire alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import xmlschema
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.readings import DeviceKind
from dashboard_api.app import create_app
from devices.registry import DeviceRegistry
from devices.schemas import DeviceCreate
from dispatch.cap import ATOM_NS, CAP_NS
from dispatch.model import AlertStatus
from dispatch.store import AlertStore
from rules.events import Action, AlertEvent, Severity
from tests.conftest import reference_data
from tests.unit.conftest import ADMIN_HEADERS, api_services

NS = {"cap": CAP_NS, "atom": ATOM_NS}
MS = 1_795_000_000_000


def child(element: etree._Element, path: str) -> etree._Element:
    """A sub-element that must exist."""
    found = element.find(path, NS)
    assert found is not None, path
    return found


def text(element: etree._Element, path: str) -> str:
    """The text of a sub-element that must exist."""
    found = element.findtext(path, namespaces=NS)
    assert found is not None, path
    return found


def fire(
    action: Action, kind: str, device: str, ts: int, partners: tuple[str, ...] = ()
) -> AlertEvent:
    zone = "pasar" if partners else None
    reason = f"{kind} {device}"
    return AlertEvent(
        action, "fire", kind, "fire", device, 0, ts, Severity.critical, reason, {}, partners, zone
    )


@pytest.fixture
async def setup(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[httpx.AsyncClient, AlertStore]]:
    registry = DeviceRegistry(sessions)
    for i, lat in ((1, -2.5389), (2, -2.539)):
        device = DeviceCreate(
            id=f"fire-00{i}",
            kind=DeviceKind.fire,
            name=f"Pasar lt.{i}",
            lat=lat,
            lon=112.9475,
            district="Baamang",
            zone="pasar",
        )
        await registry.create(device)

    store = AlertStore(sessions)
    services = api_services(sessions, devices=registry, alerts=store)
    app = create_app(services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=ADMIN_HEADERS
    ) as client:
        yield client, store


async def test_cap_endpoints(setup: tuple[httpx.AsyncClient, AlertStore]) -> None:
    client, store = setup
    schema = xmlschema.XMLSchema(reference_data("cap-1.2", "CAP-v1.2.xsd"))
    await store.apply([fire(Action.raise_, "fire.alarm", "fire-001", MS)])
    await store.apply([fire(Action.raise_, "fire.alarm", "fire-002", MS + 1000)])
    await store.apply([fire(Action.update, "fire.confirmed", "fire-001", MS + 2000, ("fire-002",))])
    await store.act(2, "resolve", "op", outcome=AlertStatus.false_alarm)

    one = await client.get("/api/v1/alerts/1/cap")
    assert one.status_code == 200 and one.headers["content-type"] == "application/cap+xml"
    schema.validate(one.content)
    root = etree.fromstring(one.content)
    assert root.findtext("cap:msgType", namespaces=NS) == "Update"
    assert len(text(root, "cap:references").split()) == 1
    assert root.findtext("cap:info/cap:area/cap:circle", namespaces=NS) == "-2.5389,112.9475 0.1"
    assert (await client.get("/api/v1/alerts/99/cap")).status_code == 404

    incident = await client.get("/api/v1/incidents/1/cap")
    assert incident.status_code == 200, incident.text
    schema.validate(incident.content)
    root = etree.fromstring(incident.content)
    assert len(root.findall("cap:info[cap:language='en-US']/cap:area/cap:circle", NS)) == 2
    assert (await client.get("/api/v1/incidents/99/cap")).status_code == 404

    feed = await client.get("/api/v1/alerts/cap")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = etree.fromstring(feed.content)
    entries = root.findall("atom:entry", NS)
    assert len(entries) == 2  # one active, one closed today (its Cancel)
    kinds = sorted(text(child(e, "atom:content/cap:alert"), "cap:msgType") for e in entries)
    assert kinds == ["Cancel", "Update"]
    links = sorted(str(child(e, "atom:link").get("href")) for e in entries)
    assert links == ["http://test/api/v1/alerts/1/cap", "http://test/api/v1/alerts/2/cap"]
    for e in entries:
        schema.validate(etree.tostring(child(e, "atom:content/cap:alert")))
    assert (await client.get("/openapi.json")).status_code == 200
