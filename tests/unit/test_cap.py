"""CAP 1.2 documents and their Atom feed, validated against the OASIS schema."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import xmlschema
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.readings import DeviceKind
from devices.schemas import DevicePublic
from dispatch.cap import (
    ATOM_NS,
    CAP_MEDIA_TYPE,
    CAP_NS,
    CapRef,
    alert_cap,
    alert_ref,
    cap_feed,
    cap_ref,
    incident_cap,
    latest_alert_cap,
    latest_incident_cap,
)
from dispatch.model import AlertChange, AlertPublic, AlertStatus, ChangeType, IncidentPublic
from dispatch.store import AlertStore
from rules.events import Action, AlertEvent, Severity
from tests.conftest import reference_data

NS = {"cap": CAP_NS, "atom": ATOM_NS}
T0 = datetime(2026, 11, 27, 9, 30, 15, 250_000, tzinfo=UTC)  # 16:30:15 WIB
CAP_DATETIME = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-,+]\d\d:\d\d$")

KINDS = {
    "fire.pre_alarm": ("fire", "fire", "major"),
    "fire.alarm": ("fire", "fire", "critical"),
    "fire.confirmed": ("fire", "fire", "critical"),
    "bin.fire": ("bin.fire", "fire", "critical"),
    "bin.nearly_full": ("bin.fill", "bin", "info"),
    "bin.full": ("bin.fill", "bin", "minor"),
    "bin.tilted": ("bin.tilted", "bin", "minor"),
    "device.offline": ("device.offline", "device", "major"),
    "device.battery_low": ("device.battery_low", "device", "minor"),
    "device.fault": ("device.fault", "device", "minor"),
    "bin.overflow": ("bin.overflow", "bin", "minor"),  # a kind this module has never heard of
}

DETECTOR = DevicePublic(
    id="fire-001",
    kind=DeviceKind.fire,
    name="Pasar Mentaya lt.2",
    lat=-2.5389,
    lon=112.9475,
    district="Mentawa Baru Ketapang",
    zone="pasar-mentaya",
    created_at=T0,
)
NEIGHBOUR = DETECTOR.model_copy(
    update={"id": "fire-002", "name": "Pasar Mentaya lt.1", "lat": -2.539}
)
BIN = DevicePublic(
    id="bin-001",
    kind=DeviceKind.bin,
    name="TPS Jl. Tjilik Riwut",
    lat=-2.5301,
    lon=112.9402,
    district="Baamang",
    depth_mm=1200,
    created_at=T0,
)


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    """The OASIS CAP 1.2 schema from tests/data."""
    return xmlschema.XMLSchema(reference_data("cap-1.2", "CAP-v1.2.xsd"))


def valid(schema: xmlschema.XMLSchema, doc: bytes) -> etree._Element:
    """Validate (raising with the schema's reason) and return the parsed root."""
    schema.validate(doc)
    return etree.fromstring(doc)


def text(root: etree._Element, path: str) -> str:
    found = root.findtext(path, namespaces=NS)
    assert found is not None, f"{path} missing"
    return found


def texts(root: etree._Element, path: str) -> list[str]:
    return [e.text or "" for e in root.findall(path, namespaces=NS)]


def make_alert(kind: str = "fire.alarm", **changes: Any) -> AlertPublic:
    slot, category, severity = KINDS[kind]
    fields: dict[str, Any] = {
        "id": 7,
        "slot": slot,
        "kind": kind,
        "category": category,
        "device_id": DETECTOR.id if category == "fire" and slot == "fire" else BIN.id,
        "status": AlertStatus.open,
        "severity": severity,
        "reason": "temp_c 81.5 >= 57 (fixed temperature)",
        "raised_at": T0,
        "updated_at": T0,
        "values": {"temp_c": 81.5},
    }
    fields.update(changes)
    return AlertPublic(**fields)


def device_for(alert: AlertPublic) -> DevicePublic:
    return DETECTOR if alert.device_id == DETECTOR.id else BIN


# --- the validator itself -----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_specification_examples_validate(schema: xmlschema.XMLSchema, n: int) -> None:
    schema.validate(str(reference_data("cap-1.2", f"v1dot2_appendix_adot{n}.xml")))


def test_a_cap_1_1_document_does_not_validate(schema: xmlschema.XMLSchema) -> None:
    assert not schema.is_valid(str(reference_data("cap-1.2", "wrong-version-cap-1.1-example.xml")))


def test_cap_ref_reads_the_specification_example() -> None:
    example = reference_data("cap-1.2", "v1dot2_appendix_adot3.xml").read_bytes()
    assert cap_ref(example) == CapRef(
        "trinet@caltech.edu", "TRI13970876.2", "2003-06-11T20:56:00-07:00"
    )
    with pytest.raises(ValueError, match=r"not a CAP 1\.2 alert"):
        cap_ref(reference_data("cap-1.2", "wrong-version-cap-1.1-example.xml").read_bytes())


# --- every alert document validates ---------------------------------------------------------

LATER = T0 + timedelta(minutes=3)
SHAPES: dict[str, tuple[ChangeType, dict[str, Any], str]] = {
    "raised": (ChangeType.raised, {}, "Alert"),
    "updated": (ChangeType.updated, {"updated_at": LATER}, "Update"),
    "cleared-active": (
        ChangeType.cleared,
        {"cleared_at": LATER, "updated_at": LATER},
        "Update",
    ),
    "cleared-resolved": (
        ChangeType.cleared,
        {
            "cleared_at": LATER,
            "updated_at": LATER,
            "resolved_at": LATER,
            "status": AlertStatus.resolved,
        },
        "Cancel",
    ),
    "acknowledged": (
        ChangeType.acknowledged,
        {"acknowledged_at": LATER, "updated_at": LATER, "status": AlertStatus.acknowledged},
        "Update",
    ),
    "dispatched": (
        ChangeType.dispatched,
        {
            "acknowledged_at": LATER,
            "dispatched_at": LATER,
            "station_id": "damkar-baamang",
            "updated_at": LATER,
            "status": AlertStatus.dispatched,
        },
        "Update",
    ),
    "escalated": (ChangeType.escalated, {"escalation_level": 1}, "Update"),
    "resolved": (
        ChangeType.resolved,
        {"resolved_at": LATER, "updated_at": LATER, "status": AlertStatus.resolved},
        "Cancel",
    ),
    "cancelled": (
        ChangeType.resolved,
        {"resolved_at": LATER, "updated_at": LATER, "status": AlertStatus.cancelled},
        "Cancel",
    ),
    "false-alarm": (
        ChangeType.resolved,
        {"resolved_at": LATER, "updated_at": LATER, "status": AlertStatus.false_alarm},
        "Cancel",
    ),
}


@pytest.mark.parametrize("with_device", [True, False], ids=["device", "no-device"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_alert_document_validates(
    schema: xmlschema.XMLSchema, kind: str, shape: str, with_device: bool
) -> None:
    change, fields, msg_type = SHAPES[shape]
    alert = make_alert(kind, **fields)
    first = alert_ref(make_alert(kind), change=ChangeType.raised, event_id=40)
    previous = [] if change is ChangeType.raised else [first]
    device = device_for(alert) if with_device else None
    doc = alert_cap(alert, device, change=change, event_id=41, previous=previous)
    root = valid(schema, doc)
    assert text(root, "cap:msgType") == msg_type
    assert text(root, "cap:identifier") == "sigap-alert-7-41"
    assert CAP_DATETIME.match(text(root, "cap:sent"))
    assert texts(root, "cap:info/cap:language") == ["id-ID", "en-US"]
    circles = texts(root, "cap:info/cap:area/cap:circle")
    assert len(circles) == (2 if with_device else 0)
    if msg_type == "Alert":
        assert root.find("cap:references", NS) is None
    else:
        assert text(root, "cap:references") == str(first)
    if msg_type == "Cancel":
        assert texts(root, "cap:info/cap:responseType") == ["AllClear", "AllClear"]
        assert texts(root, "cap:info/cap:urgency") == ["Past", "Past"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("fire.pre_alarm", ("Fire", "Expected", "Severe", "Possible", "Prepare")),
        ("fire.alarm", ("Fire", "Immediate", "Severe", "Likely", "Evacuate")),
        ("fire.confirmed", ("Fire", "Immediate", "Extreme", "Observed", "Evacuate")),
        ("bin.fire", ("Fire", "Immediate", "Moderate", "Likely", "Avoid")),
        ("bin.full", ("Env", "Future", "Minor", "Observed", "None")),
        ("device.offline", ("Infra", "Expected", "Moderate", "Likely", "Monitor")),
        ("bin.overflow", ("Env", "Unknown", "Minor", "Unknown", "Monitor")),
    ],
)
def test_level_mapping(kind: str, expected: tuple[str, ...]) -> None:
    root = etree.fromstring(alert_cap(make_alert(kind), None, change=ChangeType.raised, event_id=1))
    info = root.find("cap:info", NS)
    assert info is not None
    got = tuple(
        text(info, f"cap:{name}")
        for name in ("category", "urgency", "severity", "certainty", "responseType")
    )
    assert got == expected


def test_alert_values_area_and_times(schema: xmlschema.XMLSchema) -> None:
    alert = make_alert("fire.alarm", incident_id=3)
    root = valid(schema, alert_cap(alert, DETECTOR, change=ChangeType.raised, event_id=12))
    # WIB local time, whole seconds, with the offset CAP's pattern demands.
    assert text(root, "cap:sent") == "2026-11-27T16:30:15+07:00"
    assert text(root, "cap:incidents") == "sigap-incident-3"
    info = root.find("cap:info[cap:language='en-US']", NS)
    assert info is not None
    assert text(info, "cap:event") == "Fire alarm"
    assert text(info, "cap:headline") == "Fire alarm: Pasar Mentaya lt.2, Mentawa Baru Ketapang"
    assert text(info, "cap:description") == alert.reason
    assert text(info, "cap:area/cap:circle") == "-2.5389,112.9475 0.1"
    assert text(info, "cap:area/cap:areaDesc") == (
        "Pasar Mentaya lt.2, pasar-mentaya, Mentawa Baru Ketapang, Kotawaringin Timur"
    )
    params = dict(
        zip(
            texts(info, "cap:parameter/cap:valueName"),
            texts(info, "cap:parameter/cap:value"),
            strict=True,
        )
    )
    assert params["deviceId"] == "fire-001"
    assert params["alertId"] == "7"
    assert params["incidentId"] == "3"
    assert params["temp_c"] == "81.5"
    assert text(info, "cap:eventCode/cap:value") == "fire.alarm"


def test_unknown_device_gets_area_description_only(schema: xmlschema.XMLSchema) -> None:
    root = valid(schema, alert_cap(make_alert(), None, change=ChangeType.raised, event_id=1))
    assert texts(root, "cap:info/cap:area/cap:areaDesc") == ["fire-001, Kotawaringin Timur"] * 2
    assert root.find("cap:info/cap:area/cap:circle", NS) is None


def test_text_that_xml_cannot_carry_is_dropped(schema: xmlschema.XMLSchema) -> None:
    odd = DETECTOR.model_copy(update={"name": "Gudang\x07 <A&B>"})
    alert = make_alert(reason="smoke_obs_pct_m 12 >= 10\x00 & rising")
    root = valid(schema, alert_cap(alert, odd, change=ChangeType.raised, event_id=1))
    assert text(root, "cap:info/cap:headline").endswith("Gudang <A&B>, Mentawa Baru Ketapang")
    assert text(root, "cap:info/cap:description") == "smoke_obs_pct_m 12 >= 10 & rising"


def test_one_language_and_status_exercise(schema: xmlschema.XMLSchema) -> None:
    doc = alert_cap(
        make_alert(),
        DETECTOR,
        change=ChangeType.raised,
        event_id=1,
        languages=("en-US",),
        status="Exercise",
        radius_km=0.25,
    )
    root = valid(schema, doc)
    assert texts(root, "cap:info/cap:language") == ["en-US"]
    assert text(root, "cap:status") == "Exercise"
    assert text(root, "cap:info/cap:area/cap:circle") == "-2.5389,112.9475 0.25"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="sender"):
        alert_cap(make_alert(), None, change=ChangeType.raised, event_id=1, sender="a b")
    with pytest.raises(ValueError, match="languages"):
        alert_cap(make_alert(), None, change=ChangeType.raised, event_id=1, languages=("fr",))
    with pytest.raises(ValueError, match="naive"):
        alert_cap(
            make_alert(),
            None,
            change=ChangeType.raised,
            event_id=1,
            sent=datetime(2026, 11, 27, 10, 0),
        )


def test_cap_ref_of_a_built_document_matches_alert_ref() -> None:
    alert = make_alert(updated_at=LATER)
    doc = alert_cap(alert, DETECTOR, change=ChangeType.updated, event_id=9)
    assert cap_ref(doc) == alert_ref(alert, change=ChangeType.updated, event_id=9)
    assert str(cap_ref(doc)) == "sigap@kotimkab.go.id,sigap-alert-7-9,2026-11-27T16:33:15+07:00"


# --- incidents ------------------------------------------------------------------------------


def incident_members() -> tuple[IncidentPublic, list[AlertPublic]]:
    confirmed = make_alert("fire.confirmed", id=7, incident_id=2)
    alarm = make_alert(
        "fire.alarm", id=8, device_id=NEIGHBOUR.id, incident_id=2, reason="smoke 12 %/m"
    )
    incident = IncidentPublic(
        id=2,
        kind="fire",
        status="open",
        zone="pasar-mentaya",
        opened_at=T0,
        updated_at=LATER,
        alert_ids=[7, 8],
        device_ids=[DETECTOR.id, NEIGHBOUR.id],
    )
    return incident, [alarm, confirmed]


def test_incident_document(schema: xmlschema.XMLSchema) -> None:
    incident, alerts = incident_members()
    devices = {d.id: d for d in (DETECTOR, NEIGHBOUR)}
    root = valid(schema, incident_cap(incident, alerts, devices, event_id=30))
    assert text(root, "cap:identifier") == "sigap-incident-2-30"
    assert text(root, "cap:msgType") == "Alert"
    assert text(root, "cap:incidents") == "sigap-incident-2"
    info = root.find("cap:info[cap:language='en-US']", NS)
    assert info is not None
    # The highest level among the members: the confirmed fire.
    assert (text(info, "cap:severity"), text(info, "cap:certainty")) == ("Extreme", "Observed")
    assert len(info.findall("cap:area", NS)) == 1
    assert texts(info, "cap:area/cap:circle") == ["-2.5389,112.9475 0.1", "-2.539,112.9475 0.1"]
    assert "Pasar Mentaya lt.1" in text(info, "cap:area/cap:areaDesc")
    assert "smoke 12 %/m" in text(info, "cap:description")
    values = texts(info, "cap:parameter/cap:value")
    assert {"7", "8", "fire-001", "fire-002"} <= set(values)


def test_incident_update_and_cancel(schema: xmlschema.XMLSchema) -> None:
    incident, alerts = incident_members()
    first = incident_cap(incident, alerts, {}, event_id=30)
    update = valid(
        schema, incident_cap(incident, alerts, {}, event_id=31, previous=[cap_ref(first)])
    )
    assert text(update, "cap:msgType") == "Update"
    assert text(update, "cap:references") == str(cap_ref(first))
    assert update.find("cap:info/cap:area/cap:circle", NS) is None  # no device known
    done = incident.model_copy(update={"status": "resolved", "resolved_at": LATER})
    cancel = valid(schema, incident_cap(done, alerts, {}, event_id=32, previous=[cap_ref(first)]))
    assert text(cancel, "cap:msgType") == "Cancel"
    assert text(cancel, "cap:sent") == "2026-11-27T16:33:15+07:00"
    assert texts(cancel, "cap:info/cap:responseType") == ["AllClear", "AllClear"]


# --- histories from the real alert store ----------------------------------------------------

MS = int(T0.timestamp() * 1000)


def rule_event(
    action: Action, kind: str, device: str, ts_ms: int, partners: tuple[str, ...] = ()
) -> AlertEvent:
    return AlertEvent(
        action,
        "fire",
        kind,
        "fire",
        device,
        0,
        ts_ms,
        Severity.critical,
        f"{kind} on {device}",
        {"temp_c": 70.0},
        partners,
        "pasar-mentaya" if partners else None,
    )


async def test_latest_documents_from_the_store_history(
    sessions: async_sessionmaker[AsyncSession], schema: xmlschema.XMLSchema
) -> None:
    store = AlertStore(sessions)
    await store.apply([rule_event(Action.raise_, "fire.alarm", "fire-001", MS)])
    await store.apply([rule_event(Action.raise_, "fire.alarm", "fire-002", MS + 5_000)])
    await store.apply(
        [rule_event(Action.update, "fire.confirmed", "fire-001", MS + 9_000, ("fire-002",))]
    )
    await store.apply([rule_event(Action.clear, "fire.confirmed", "fire-001", MS + 60_000)])
    histories: dict[int, list[AlertChange]] = defaultdict(list)
    for change in await store.changes_after(0):
        histories[change.alert.id].append(change)
    (first_id, first_log), (second_id, _) = sorted(histories.items())
    assert [c.type for c in first_log] == [
        ChangeType.raised,
        ChangeType.updated,
        ChangeType.cleared,
    ]

    # Each message rebuilt on its own gives exactly the references the latest one lists.
    docs = [alert_cap(c.alert, DETECTOR, change=c.type, event_id=c.event_id) for c in first_log]
    latest = valid(schema, latest_alert_cap(first_log, DETECTOR))
    assert text(latest, "cap:msgType") == "Update"  # cleared, but a fire waits for people
    assert text(latest, "cap:references") == " ".join(str(cap_ref(d)) for d in docs[:-1])
    assert text(latest, "cap:identifier") == cap_ref(docs[-1]).identifier
    assert "condition eased" in text(latest, "cap:info[cap:language='en-US']/cap:headline")

    incident = await store.incident(1)
    assert incident is not None and set(incident.alert_ids) == {first_id, second_id}
    devices = {d.id: d for d in (DETECTOR, NEIGHBOUR)}
    root = valid(schema, latest_incident_cap(incident, histories, devices))
    # Versions: the confirming update, then the clear; the latest references the first.
    confirming = first_log[1]
    assert text(root, "cap:identifier") == f"sigap-incident-1-{first_log[2].event_id}"
    assert text(root, "cap:references").split(",")[1] == (f"sigap-incident-1-{confirming.event_id}")
    assert len(texts(root, "cap:info[cap:language='id-ID']/cap:area/cap:circle")) == 2


async def test_a_false_alarm_chain_from_the_store(
    sessions: async_sessionmaker[AsyncSession], schema: xmlschema.XMLSchema
) -> None:
    store = AlertStore(sessions)
    (raised,) = await store.apply([rule_event(Action.raise_, "fire.alarm", "fire-001", MS)])
    alert_id = raised.alert.id
    await store.act(alert_id, "ack", "Budi (operator)")
    await store.act(alert_id, "dispatch", "Budi (operator)", station_id="damkar-baamang")
    await store.act(alert_id, "resolve", "Budi (operator)", outcome=AlertStatus.false_alarm)
    log = [c for c in await store.changes_after(0) if c.alert.id == alert_id]
    types = [c.type for c in log]
    assert types == [
        ChangeType.raised,
        ChangeType.acknowledged,
        ChangeType.dispatched,
        ChangeType.resolved,
    ]
    docs = [alert_cap(c.alert, DETECTOR, change=c.type, event_id=c.event_id) for c in log]
    for doc, msg_type in zip(docs, ["Alert", "Update", "Update", "Cancel"], strict=True):
        assert text(valid(schema, doc), "cap:msgType") == msg_type
    dispatched = etree.fromstring(docs[2])
    en = "cap:info[cap:language='en-US']"
    assert "A crew from damkar-baamang was dispatched at" in text(
        dispatched, f"{en}/cap:description"
    )
    latest = valid(schema, latest_alert_cap(log, DETECTOR))
    assert text(latest, "cap:references") == " ".join(str(cap_ref(d)) for d in docs[:-1])
    assert text(latest, f"{en}/cap:headline").startswith("False alarm: Fire alarm: Pasar")
    assert "Declared a false alarm at" in text(latest, f"{en}/cap:description")
    assert texts(latest, "cap:info/cap:responseType") == ["AllClear", "AllClear"]
    # Who acted stays out of a public document.
    assert b"Budi" not in b"".join(docs)


def test_latest_alert_cap_needs_a_history() -> None:
    with pytest.raises(ValueError):
        latest_alert_cap([], None)


# --- the Atom feed --------------------------------------------------------------------------


def test_feed_embeds_each_document(schema: xmlschema.XMLSchema) -> None:
    fire = alert_cap(make_alert(), DETECTOR, change=ChangeType.raised, event_id=5)
    bin_fire = alert_cap(make_alert("bin.fire", id=9), BIN, change=ChangeType.raised, event_id=6)
    self_url = "http://127.0.0.1:8000/api/v1/alerts/cap"
    feed = cap_feed(
        [fire, bin_fire],
        title="Sigap: active fire alerts",
        updated=LATER,
        self_url=self_url,
        links=[f"http://127.0.0.1:8000/api/v1/alerts/{n}/cap" for n in (7, 9)],
    )
    root = etree.fromstring(feed)
    assert root.tag == f"{{{ATOM_NS}}}feed"
    assert text(root, "atom:id") == self_url
    assert text(root, "atom:updated") == "2026-11-27T16:33:15+07:00"
    assert root.find("atom:author/atom:name", NS) is not None
    assert root.find("atom:link[@rel='self']", NS) is not None
    entries = root.findall("atom:entry", NS)
    assert len(entries) == 2
    for entry, doc in zip(entries, (fire, bin_fire), strict=True):
        ref = cap_ref(doc)
        assert text(entry, "atom:id") == f"tag:sigap@kotimkab.go.id,2026-11-27:{ref.identifier}"
        assert text(entry, "atom:updated") == ref.sent
        assert text(entry, "atom:title").startswith(("Alarm kebakaran", "Kebakaran tempat"))
        link = entry.find("atom:link", NS)
        assert link is not None and link.get("type") == CAP_MEDIA_TYPE
        content = entry.find("atom:content", NS)
        assert content is not None and content.get("type") == CAP_MEDIA_TYPE
        (embedded,) = list(content)
        assert embedded.tag == f"{{{CAP_NS}}}alert"
        # The embedded document is still a valid CAP 1.2 alert on its own.
        schema.validate(etree.tostring(embedded))
        assert cap_ref(etree.tostring(embedded)) == ref


def test_empty_feed_and_link_count() -> None:
    feed = etree.fromstring(cap_feed([], title="none", updated=T0, self_url="http://x/feed"))
    assert feed.findall("atom:entry", NS) == []
    with pytest.raises(ValueError, match="links"):
        cap_feed([b"<x/>"], title="t", updated=T0, self_url="http://x", links=[])
