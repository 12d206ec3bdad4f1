"""Alerts and incidents as OASIS CAP 1.2 documents, and an Atom feed of them (pure, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal
from urllib.parse import quote

from lxml import etree

from devices.schemas import DevicePublic
from dispatch.model import AlertChange, AlertPublic, ChangeType, IncidentPublic

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS: Final = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE: Final = "application/cap+xml"
ATOM_MEDIA_TYPE: Final = "application/atom+xml"
DEFAULT_SENDER: Final = "sigap@kotimkab.go.id"
REGENCY: Final = "Kotawaringin Timur"
# Indonesia has no daylight saving: Western Indonesia Time is a fixed UTC+7.
WIB: Final = timezone(timedelta(hours=7), "WIB")
LANGUAGES: Final = ("id-ID", "en-US")
DEFAULT_RADIUS_KM: Final = 0.1

CapStatus = Literal["Actual", "Exercise", "System", "Test", "Draft"]
MsgType = Literal["Alert", "Update", "Cancel"]

# Alert statuses that end an alert: the outcomes a person closes it with.
CLOSED_STATUSES: Final = frozenset({"resolved", "cancelled", "false_alarm"})
# CAP forbids spaces, commas and the XML-reserved "<" and "&" in sender and identifier,
# because references are "sender,identifier,sent" triples separated by whitespace.
_RESERVED = re.compile(r"[\s,<&]")
# Characters XML 1.0 cannot carry at all; a device name typed with a stray control
# character must not make the whole document unbuildable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_EMAIL_OR_DNS = re.compile(r"^(?:[A-Za-z0-9._%+-]+@)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
# Untrusted bytes (cap_ref takes any document): no entities, no network, no huge trees.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
_HEADLINE_MAX = 160  # the specification asks for headlines under 160 characters


@dataclass(frozen=True, slots=True)
class CapRef:
    """One earlier CAP message, as `<references>` names it."""

    sender: str
    identifier: str
    sent: str  # exactly as the earlier message's <sent>

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"


@dataclass(frozen=True, slots=True)
class _Profile:
    """How one alert kind reads in CAP."""

    category: str
    urgency: str
    severity: str | None  # None: from the alert's own severity (device health)
    certainty: str
    response: str
    event: Mapping[str, str]  # language -> event name
    instruction: Mapping[str, str]  # language -> what people should do


_FIRE_EXIT = {
    "id-ID": "Segera tinggalkan gedung lewat jalur evakuasi terdekat dan hubungi pemadam "
    "kebakaran di 113.",
    "en-US": "Leave the building now by the nearest exit and call the fire brigade on 113.",
}
_BIN_CREW = {
    "id-ID": "Petugas kebersihan akan mengosongkannya; jangan menaruh sampah di luar tempat "
    "sampah.",
    "en-US": "A waste crew will empty it; do not leave waste beside the bin.",
}
_TECHNICIAN = {
    "id-ID": "Teknisi akan memeriksa perangkat; sementara itu lokasi ini mungkin tidak terpantau.",
    "en-US": "A technician will check the device; meanwhile this place may not be monitored.",
}

PROFILES: Final[Mapping[str, _Profile]] = {
    "fire.pre_alarm": _Profile(
        "Fire",
        "Expected",
        "Severe",
        "Possible",
        "Prepare",
        {"id-ID": "Pra-alarm kebakaran", "en-US": "Fire pre-alarm"},
        {
            "id-ID": "Periksa lokasi detektor dan bersiaplah untuk evakuasi.",
            "en-US": "Check the detector's location and be ready to evacuate.",
        },
    ),
    "fire.alarm": _Profile(
        "Fire",
        "Immediate",
        "Severe",
        "Likely",
        "Evacuate",
        {"id-ID": "Alarm kebakaran", "en-US": "Fire alarm"},
        _FIRE_EXIT,
    ),
    "fire.confirmed": _Profile(
        "Fire",
        "Immediate",
        "Extreme",
        "Observed",
        "Evacuate",
        {"id-ID": "Kebakaran terkonfirmasi", "en-US": "Confirmed fire"},
        {
            "id-ID": _FIRE_EXIT["id-ID"] + " Jangan masuk kembali.",
            "en-US": _FIRE_EXIT["en-US"] + " Do not go back inside.",
        },
    ),
    "bin.fire": _Profile(
        "Fire",
        "Immediate",
        "Moderate",
        "Likely",
        "Avoid",
        {"id-ID": "Kebakaran tempat sampah", "en-US": "Waste bin fire"},
        {
            "id-ID": "Jauhi tempat sampah yang terbakar; hubungi 113 bila api membesar.",
            "en-US": "Keep away from the burning bin; call 113 if the fire spreads.",
        },
    ),
    "bin.full": _Profile(
        "Env",
        "Future",
        "Minor",
        "Observed",
        "None",
        {"id-ID": "Tempat sampah penuh", "en-US": "Waste bin full"},
        _BIN_CREW,
    ),
    "bin.nearly_full": _Profile(
        "Env",
        "Future",
        "Minor",
        "Likely",
        "None",
        {"id-ID": "Tempat sampah hampir penuh", "en-US": "Waste bin nearly full"},
        _BIN_CREW,
    ),
    "bin.tilted": _Profile(
        "Env",
        "Expected",
        "Minor",
        "Observed",
        "None",
        {"id-ID": "Tempat sampah terguling", "en-US": "Waste bin knocked over"},
        {
            "id-ID": "Petugas kebersihan akan menegakkan kembali tempat sampah.",
            "en-US": "A waste crew will set the bin upright.",
        },
    ),
    "device.offline": _Profile(
        "Infra",
        "Expected",
        None,
        "Likely",
        "Monitor",
        {"id-ID": "Perangkat tidak terhubung", "en-US": "Device offline"},
        _TECHNICIAN,
    ),
    "device.fault": _Profile(
        "Infra",
        "Expected",
        None,
        "Likely",
        "Monitor",
        {"id-ID": "Perangkat rusak", "en-US": "Device fault"},
        _TECHNICIAN,
    ),
    "device.battery_low": _Profile(
        "Infra",
        "Future",
        None,
        "Observed",
        "None",
        {"id-ID": "Baterai perangkat lemah", "en-US": "Device battery low"},
        {
            "id-ID": "Teknisi akan mengganti baterai perangkat.",
            "en-US": "A technician will replace the device's battery.",
        },
    ),
}
_CATEGORY = {"fire": "Fire", "bin": "Env", "device": "Infra", "haze": "Env"}
_SEVERITY = {"critical": "Severe", "major": "Moderate", "minor": "Minor", "info": "Minor"}
# Orders for picking an incident's highest level (most severe, then most urgent, surest).
_SEVERITY_RANK = {"Extreme": 4, "Severe": 3, "Moderate": 2, "Minor": 1}
_URGENCY_RANK = {"Immediate": 4, "Expected": 3, "Future": 2, "Past": 1}
_CERTAINTY_RANK = {"Observed": 4, "Likely": 3, "Possible": 2, "Unlikely": 1}

_SENDER_NAME = {
    "id-ID": "Sigap, Pemerintah Kabupaten Kotawaringin Timur",
    "en-US": "Sigap, Kotawaringin Timur Regency",
}
# Headline prefix of a Cancel, by the alert's closing status.
_OUTCOME = {
    "resolved": {"id-ID": "Selesai", "en-US": "All clear"},
    "cancelled": {"id-ID": "Dibatalkan", "en-US": "Cancelled"},
    "false_alarm": {"id-ID": "Alarm palsu", "en-US": "False alarm"},
}
_ENDED = {
    "resolved": {"id-ID": "Selesai pada {at}.", "en-US": "Ended at {at}."},
    "cancelled": {"id-ID": "Dibatalkan pada {at}.", "en-US": "Cancelled at {at}."},
    "false_alarm": {
        "id-ID": "Dinyatakan alarm palsu pada {at}.",
        "en-US": "Declared a false alarm at {at}.",
    },
}
# Progress for the public; who acted stays out of public documents (times only).
_ACKNOWLEDGED = {
    "id-ID": "Diterima petugas pada {at}.",
    "en-US": "Acknowledged by responders at {at}.",
}
_DISPATCHED = {
    "id-ID": "Regu dari {station} diberangkatkan pada {at}.",
    "en-US": "A crew from {station} was dispatched at {at}.",
}
_NO_ACTION = {
    "id-ID": "Tidak perlu tindakan lebih lanjut.",
    "en-US": "No further action is needed.",
}
_CLEARED_NOTE = {
    "id-ID": "Sensor kembali normal sejak {at}; peringatan tetap aktif sampai petugas "
    "menyelesaikannya.",
    "en-US": "The sensor has read normal since {at}; the alert stays active until "
    "responders resolve it.",
}
_CLEARED_TAG = {"id-ID": "kondisi mereda", "en-US": "condition eased"}
_INCIDENT_EVENT = {"id-ID": "Insiden kebakaran", "en-US": "Fire incident"}
_INCIDENT_SUMMARY = {
    "id-ID": "Kebakaran di {place}, dideteksi oleh {n} detektor:",
    "en-US": "Fire at {place}, detected by {n} detectors:",
}
_ZONE = {"id-ID": "zona", "en-US": "zone"}


def cap_time(moment: datetime) -> str:
    """A CAP dateTime: WIB with its offset, whole seconds (e.g. 2026-11-27T17:05:09+07:00)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware datetime")
    return moment.astimezone(WIB).replace(microsecond=0).isoformat()


def change_time(alert: AlertPublic, change: ChangeType) -> datetime:
    """When a change happened, from the alert snapshot taken with it (a message's `sent`)."""
    if change is ChangeType.raised:
        return alert.raised_at
    if change is ChangeType.cleared:
        return alert.cleared_at or alert.updated_at
    if change is ChangeType.resolved:
        return alert.resolved_at or alert.updated_at
    if change is ChangeType.acknowledged:
        return alert.acknowledged_at or alert.updated_at
    if change is ChangeType.dispatched:
        return alert.dispatched_at or alert.updated_at
    return alert.updated_at  # updated, escalated


def alert_identifier(alert_id: int, event_id: int) -> str:
    """The CAP identifier of the message for one change of one alert."""
    return f"sigap-alert-{alert_id}-{event_id}"


def incident_identifier(incident_id: int, event_id: int | None = None) -> str:
    """The CAP identifier of an incident message, or (no event id) the incident's name."""
    base = f"sigap-incident-{incident_id}"
    return base if event_id is None else f"{base}-{event_id}"


def alert_ref(
    alert: AlertPublic, *, change: ChangeType, event_id: int, sender: str = DEFAULT_SENDER
) -> CapRef:
    """The reference to the message `alert_cap` builds for this change, without building it."""
    return CapRef(
        sender, alert_identifier(alert.id, event_id), cap_time(change_time(alert, change))
    )


def alert_cap(
    alert: AlertPublic,
    device: DevicePublic | None,
    *,
    change: ChangeType,
    event_id: int,
    sender: str = DEFAULT_SENDER,
    previous: Sequence[CapRef] = (),
    sent: datetime | None = None,
    status: CapStatus = "Actual",
    languages: Sequence[str] = LANGUAGES,
    radius_km: float = DEFAULT_RADIUS_KM,
    web: str | None = None,
) -> bytes:
    """One alert change as a CAP 1.2 document (msgType Alert, Update or Cancel)."""
    _check_languages(languages)
    msg_type = _alert_msg_type(alert, change)
    profile = _profile(alert.kind, alert.category)
    place = _place(device, alert.device_id)
    cleared = alert.cleared_at is not None and msg_type == "Update"
    params = [
        ("deviceId", alert.device_id),
        ("alertId", str(alert.id)),
        *([("incidentId", str(alert.incident_id))] if alert.incident_id is not None else []),
        ("alertKind", alert.kind),
        ("alertStatus", str(alert.status)),
        *([("stationId", alert.station_id)] if alert.station_id else []),
        *([("escalationLevel", str(alert.escalation_level))] if alert.escalation_level else []),
        *((name, _value_text(value)) for name, value in sorted(alert.values.items())),
    ]
    circles = [] if device is None else [_circle(device.lat, device.lon, radius_km)]
    root = _alert_root(
        identifier=alert_identifier(alert.id, event_id),
        sender=sender,
        sent=cap_time(sent or change_time(alert, change)),
        status=status,
        msg_type=msg_type,
        previous=previous,
        incident_id=alert.incident_id,
    )
    outcome = str(alert.status) if str(alert.status) in CLOSED_STATUSES else "resolved"
    for language in languages:
        notes = []
        if cleared and alert.cleared_at is not None:
            notes.append(_CLEARED_NOTE[language].format(at=_readable(alert.cleared_at)))
        if msg_type == "Cancel":
            ended = alert.resolved_at or alert.cleared_at or alert.updated_at
            notes.append(_ENDED[outcome][language].format(at=_readable(ended)))
        elif alert.dispatched_at is not None and alert.station_id:
            at = _readable(alert.dispatched_at)
            notes.append(_DISPATCHED[language].format(station=alert.station_id, at=at))
        elif alert.acknowledged_at is not None:
            notes.append(_ACKNOWLEDGED[language].format(at=_readable(alert.acknowledged_at)))
        event = profile.event.get(language, alert.kind)
        headline = f"{event}: {place}"
        if cleared:
            headline += f" ({_CLEARED_TAG[language]})"
        if msg_type == "Cancel":
            headline = f"{_OUTCOME[outcome][language]}: {headline}"
        _info(
            root,
            language=language,
            profile=profile,
            severity=_severity(profile, alert.severity),
            msg_type=msg_type,
            kind=alert.kind,
            onset=alert.raised_at,
            headline=headline,
            description="\n".join([alert.reason, *notes]),
            web=web,
            params=params,
            area_desc=_area_desc(device, alert.device_id),
            circles=circles,
        )
    return _serialize(root)


def incident_cap(
    incident: IncidentPublic,
    alerts: Sequence[AlertPublic],
    devices: Mapping[str, DevicePublic],
    *,
    event_id: int,
    sender: str = DEFAULT_SENDER,
    previous: Sequence[CapRef] = (),
    sent: datetime | None = None,
    status: CapStatus = "Actual",
    languages: Sequence[str] = LANGUAGES,
    radius_km: float = DEFAULT_RADIUS_KM,
    web: str | None = None,
) -> bytes:
    """An incident as one CAP 1.2 document: its highest alert level, a circle per detector."""
    _check_languages(languages)
    closed = incident.resolved_at is not None or incident.status in CLOSED_STATUSES
    msg_type: MsgType = "Cancel" if closed else ("Update" if previous else "Alert")
    members = sorted(alerts, key=lambda a: a.id)
    top = max(
        members,
        key=lambda a: _rank(_profile(a.kind, a.category), a.severity),
        default=None,
    )
    kind = top.kind if top is not None else "fire.confirmed"
    profile = _profile(kind, "fire")
    device_ids = list(dict.fromkeys([*incident.device_ids, *(a.device_id for a in members)]))
    known = [devices[d] for d in device_ids if d in devices]
    circles = list(dict.fromkeys(_circle(d.lat, d.lon, radius_km) for d in known))
    alert_ids = list(dict.fromkeys([*incident.alert_ids, *(a.id for a in members)]))
    params = [
        ("incidentId", str(incident.id)),
        ("incidentStatus", incident.status),
        ("alertKind", kind),
        *(("alertId", str(a)) for a in alert_ids),
        *(("deviceId", d) for d in device_ids),
    ]
    names = {d.id: d.name or d.id for d in known}
    districts = list(dict.fromkeys(d.district for d in known if d.district))
    area_desc = ", ".join(
        _clean(part)
        for part in (
            *(d.name or d.id for d in known),
            *([incident.zone] if incident.zone else []),
            *districts,
            REGENCY,
        )
    )
    default_sent = incident.resolved_at if closed and incident.resolved_at else incident.updated_at
    root = _alert_root(
        identifier=incident_identifier(incident.id, event_id),
        sender=sender,
        sent=cap_time(sent or default_sent),
        status=status,
        msg_type=msg_type,
        previous=previous,
        incident_id=incident.id,
    )
    for language in languages:
        if incident.zone:
            where = f"{_ZONE[language]} {incident.zone}"
        else:
            where = districts[0] if districts else REGENCY
        lines = [_INCIDENT_SUMMARY[language].format(place=where, n=len(device_ids))]
        lines += [f"- {names.get(a.device_id, a.device_id)}: {a.reason}" for a in members]
        if closed and incident.resolved_at is not None:
            ended = _ENDED["resolved"][language]
            lines.append(ended.format(at=_readable(incident.resolved_at)))
        event = profile.event.get(language, kind)
        headline = f"{_INCIDENT_EVENT[language]}: {event}, {where}"
        if closed:
            headline = f"{_OUTCOME['resolved'][language]}: {headline}"
        _info(
            root,
            language=language,
            profile=profile,
            severity=_severity(profile, top.severity if top is not None else "critical"),
            msg_type=msg_type,
            kind=kind,
            onset=incident.opened_at,
            headline=headline,
            description="\n".join(lines),
            web=web,
            params=params,
            area_desc=area_desc,
            circles=circles,
        )
    return _serialize(root)


def latest_alert_cap(
    changes: Sequence[AlertChange],
    device: DevicePublic | None,
    *,
    sender: str = DEFAULT_SENDER,
    status: CapStatus = "Actual",
    languages: Sequence[str] = LANGUAGES,
    radius_km: float = DEFAULT_RADIUS_KM,
    web: str | None = None,
) -> bytes:
    """The message for an alert's latest change, referencing every earlier one.

    `changes` is the alert's change log, oldest first (e.g. from `AlertStore`); because
    identifiers and `sent` come from the log, every earlier reference is rebuilt exactly.
    """
    if not changes:
        raise ValueError("an alert's change log is never empty")
    *earlier, last = changes
    previous = [
        alert_ref(c.alert, change=c.type, event_id=c.event_id, sender=sender) for c in earlier
    ]
    return alert_cap(
        last.alert,
        device,
        change=last.type,
        event_id=last.event_id,
        sender=sender,
        previous=previous,
        status=status,
        languages=languages,
        radius_km=radius_km,
        web=web,
    )


def latest_incident_cap(
    incident: IncidentPublic,
    histories: Mapping[int, Sequence[AlertChange]],
    devices: Mapping[str, DevicePublic],
    *,
    sender: str = DEFAULT_SENDER,
    status: CapStatus = "Actual",
    languages: Sequence[str] = LANGUAGES,
    radius_km: float = DEFAULT_RADIUS_KM,
    web: str | None = None,
) -> bytes:
    """The incident's current message, referencing the versions before it.

    `histories` maps each member alert id to its change log, oldest first. Each change that
    carries this incident's id is one version of the incident's message.
    """
    versions = sorted(
        (c for log in histories.values() for c in log if c.alert.incident_id == incident.id),
        key=lambda c: c.event_id,
    )
    members = [log[-1].alert for log in histories.values() if log]
    if not versions:
        raise ValueError(f"no change of incident {incident.id}'s alerts names the incident")
    previous = [
        CapRef(
            sender,
            incident_identifier(incident.id, c.event_id),
            cap_time(change_time(c.alert, c.type)),
        )
        for c in versions[:-1]
    ]
    last = versions[-1]
    sent = incident.resolved_at or max(
        change_time(last.alert, last.type), incident.updated_at, incident.opened_at
    )
    return incident_cap(
        incident,
        members,
        devices,
        event_id=last.event_id,
        sender=sender,
        previous=previous,
        sent=sent,
        status=status,
        languages=languages,
        radius_km=radius_km,
        web=web,
    )


def cap_ref(doc: bytes) -> CapRef:
    """Sender, identifier and sent of a CAP 1.2 document (for a later `<references>`)."""
    root = _parse_cap(doc)
    return CapRef(
        _child_text(root, "sender"), _child_text(root, "identifier"), _child_text(root, "sent")
    )


def cap_feed(
    documents: Sequence[bytes],
    *,
    title: str,
    updated: datetime,
    self_url: str,
    links: Sequence[str] | None = None,
    author: str = _SENDER_NAME["en-US"],
) -> bytes:
    """An Atom 1.0 feed with one entry per CAP document, each embedded as XML content.

    `links` gives each entry's alternate link (e.g. the alert's CAP URL), in document order;
    without it, entries link to the feed with the identifier as fragment.
    """
    if links is not None and len(links) != len(documents):
        raise ValueError(f"{len(links)} links for {len(documents)} documents")
    feed = etree.Element(_atom("feed"), nsmap={None: ATOM_NS})
    _sub(feed, _atom("id"), self_url)
    _sub(feed, _atom("title"), title)
    _sub(feed, _atom("updated"), cap_time(updated))
    _sub(_sub(feed, _atom("author")), _atom("name"), author)
    etree.SubElement(
        feed, _atom("link"), {"rel": "self", "href": self_url, "type": ATOM_MEDIA_TYPE}
    )
    for index, doc in enumerate(documents):
        cap = _parse_cap(doc)
        ref = CapRef(
            _child_text(cap, "sender"), _child_text(cap, "identifier"), _child_text(cap, "sent")
        )
        info = cap.find(_cap("info"))
        heading = None if info is None else info.findtext(_cap("headline"))
        if not heading and info is not None:
            heading = info.findtext(_cap("event"))
        entry = _sub(feed, _atom("entry"))
        _sub(entry, _atom("id"), _entry_id(ref, self_url))
        _sub(entry, _atom("title"), heading or ref.identifier)
        _sub(entry, _atom("updated"), ref.sent)  # CAP's dateTime is also RFC 3339
        href = links[index] if links is not None else f"{self_url}#{quote(ref.identifier)}"
        etree.SubElement(
            entry, _atom("link"), {"rel": "alternate", "href": href, "type": CAP_MEDIA_TYPE}
        )
        # An XML media type: RFC 4287 4.1.3.3 puts the document inline as the only child.
        _sub(entry, _atom("content"), attrib={"type": CAP_MEDIA_TYPE}).append(cap)
    return _serialize(feed)


# --- building blocks ---------------------------------------------------------------------


def _alert_root(
    *,
    identifier: str,
    sender: str,
    sent: str,
    status: CapStatus,
    msg_type: MsgType,
    previous: Sequence[CapRef],
    incident_id: int | None,
) -> etree._Element:
    for name, value in (("sender", sender), ("identifier", identifier)):
        if not value or _RESERVED.search(value):
            raise ValueError(f"CAP {name} {value!r} must be non-empty, without spaces, , < or &")
    root = etree.Element(_cap("alert"), nsmap={None: CAP_NS})
    # The schema is a strict sequence: this order is the specification's.
    _sub(root, _cap("identifier"), identifier)
    _sub(root, _cap("sender"), sender)
    _sub(root, _cap("sent"), sent)
    _sub(root, _cap("status"), status)
    _sub(root, _cap("msgType"), msg_type)
    _sub(root, _cap("scope"), "Public")
    if previous and msg_type != "Alert":
        _sub(root, _cap("references"), " ".join(str(ref) for ref in dict.fromkeys(previous)))
    if incident_id is not None:
        _sub(root, _cap("incidents"), incident_identifier(incident_id))
    return root


def _info(
    root: etree._Element,
    *,
    language: str,
    profile: _Profile,
    severity: str,
    msg_type: MsgType,
    kind: str,
    onset: datetime,
    headline: str,
    description: str,
    web: str | None,
    params: Iterable[tuple[str, str]],
    area_desc: str,
    circles: Sequence[str],
) -> None:
    ended = msg_type == "Cancel"
    info = _sub(root, _cap("info"))
    _sub(info, _cap("language"), language)
    _sub(info, _cap("category"), profile.category)
    _sub(info, _cap("event"), profile.event.get(language, kind))
    _sub(info, _cap("responseType"), "AllClear" if ended else profile.response)
    # "Past": responsive action is no longer required.
    _sub(info, _cap("urgency"), "Past" if ended else profile.urgency)
    _sub(info, _cap("severity"), severity)
    _sub(info, _cap("certainty"), profile.certainty)
    code = _sub(info, _cap("eventCode"))
    _sub(code, _cap("valueName"), "sigap")
    _sub(code, _cap("value"), kind)
    _sub(info, _cap("onset"), cap_time(onset))
    _sub(info, _cap("senderName"), _SENDER_NAME[language])
    _sub(info, _cap("headline"), _shorten(headline, _HEADLINE_MAX))
    _sub(info, _cap("description"), description)
    _sub(
        info, _cap("instruction"), _NO_ACTION[language] if ended else profile.instruction[language]
    )
    if web:
        _sub(info, _cap("web"), web)
    for name, value in params:
        parameter = _sub(info, _cap("parameter"))
        _sub(parameter, _cap("valueName"), name)
        _sub(parameter, _cap("value"), value)
    area = _sub(info, _cap("area"))
    _sub(area, _cap("areaDesc"), area_desc)
    for circle in circles:
        _sub(area, _cap("circle"), circle)


def _alert_msg_type(alert: AlertPublic, change: ChangeType) -> MsgType:
    if change is ChangeType.raised:
        return "Alert"
    if (
        change is ChangeType.resolved
        or alert.resolved_at is not None
        or str(alert.status) in CLOSED_STATUSES
    ):
        return "Cancel"
    return "Update"  # updated, or cleared while a fire alert waits for people to resolve it


def _profile(kind: str, category: str) -> _Profile:
    found = PROFILES.get(kind)
    if found is not None:
        return found
    # A kind added to the rules later still gets a valid, honest document.
    return _Profile(
        _CATEGORY.get(category, "Other"),
        "Unknown",
        None,
        "Unknown",
        "Monitor",
        {},
        {
            "id-ID": "Ikuti informasi dari petugas.",
            "en-US": "Follow the responders' information.",
        },
    )


def _severity(profile: _Profile, alert_severity: str) -> str:
    return profile.severity or _SEVERITY.get(str(alert_severity), "Unknown")


def _rank(profile: _Profile, alert_severity: str) -> tuple[int, int, int]:
    return (
        _SEVERITY_RANK.get(_severity(profile, alert_severity), 0),
        _URGENCY_RANK.get(profile.urgency, 0),
        _CERTAINTY_RANK.get(profile.certainty, 0),
    )


def _place(device: DevicePublic | None, device_id: str) -> str:
    if device is None:
        return _clean(device_id)
    parts = [device.name or device.id, *([device.district] if device.district else [])]
    return _clean(", ".join(parts))


def _area_desc(device: DevicePublic | None, device_id: str) -> str:
    if device is None:
        return _clean(f"{device_id}, {REGENCY}")
    parts = [device.name or device.id, device.zone or "", device.district, REGENCY]
    return _clean(", ".join(p for p in parts if p))


def _circle(lat: float, lon: float, radius_km: float) -> str:
    """CAP circle: "lat,lon radius" in WGS 84 degrees and kilometres."""
    return f"{_number(lat)},{_number(lon)} {_number(radius_km)}"


def _number(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _readable(moment: datetime) -> str:
    return moment.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) < limit else text[: limit - 2].rstrip() + "…"


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _check_languages(languages: Sequence[str]) -> None:
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if not languages or unknown:
        raise ValueError(f"languages must be some of {LANGUAGES}, got {list(languages)}")


def _entry_id(ref: CapRef, self_url: str) -> str:
    """A permanent Atom id: a tag URI (RFC 4151) from sender, the sent date and identifier."""
    identifier = quote(ref.identifier, safe="-._~:@!$'()*+;=/?")
    if _EMAIL_OR_DNS.match(ref.sender):
        return f"tag:{ref.sender},{ref.sent[:10]}:{identifier}"
    return f"{self_url}#{identifier}"


def _cap(tag: str) -> str:
    return f"{{{CAP_NS}}}{tag}"


def _atom(tag: str) -> str:
    return f"{{{ATOM_NS}}}{tag}"


def _sub(
    parent: etree._Element,
    tag: str,
    text: str | None = None,
    attrib: Mapping[str, str] | None = None,
) -> etree._Element:
    element = etree.SubElement(parent, tag, dict(attrib or {}))
    if text is not None:
        element.text = _clean(text)
    return element


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _parse_cap(doc: bytes) -> etree._Element:
    try:
        root = etree.fromstring(doc, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root.tag != _cap("alert"):
        raise ValueError(f"not a CAP 1.2 alert: root element {root.tag!r}")
    return root


def _child_text(root: etree._Element, name: str) -> str:
    text = root.findtext(_cap(name))
    if not text:
        raise ValueError(f"CAP document without <{name}>")
    return text.strip()
