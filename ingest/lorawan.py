"""LoRaWAN network-server uplinks (The Things Stack v3, ChirpStack v4) into Sigap readings.

Pure functions and one small pure class: no I/O and no clock (arrival times are passed in).

    uplink = decode_uplink(topic, payload, arrival_ms, limits)    # envelope -> Uplink
    info = directory.find_lorawan(uplink.network_server, uplink.device_keys)
    if not dedup.seen(uplink.dedup_key, arrival_ms):
        reading = to_reading(uplink, info.id, info.field_map, now_ms, limits)

Envelope shapes, as the servers publish them:
- The Things Stack v3, topic `v3/{app}@{tenant}/devices/{device_id}/up`: `end_device_ids`
  (`device_id`, `dev_eui`), `received_at`, `uplink_message` (`f_cnt`, `decoded_payload`,
  `rx_metadata[]` with `gateway_ids.gateway_id` and `rssi`).
- ChirpStack v4 with the JSON marshaler, topic
  `application/{application_id}/device/{dev_eui}/event/up`: `deduplicationId`, `time`,
  `deviceInfo` (`devEui`, `deviceName`, ...), `fCnt`, `object` (only when the device profile
  has a codec), `rxInfo[]` with `gatewayId` and `rssi`.
Both encode protobuf messages with the protobuf JSON mapping, which leaves out fields at
their default value: a missing `f_cnt` / `fCnt` is 0 (ChirpStack's own docs example has none).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contract import topics, units
from contract.readings import QUANTITIES, RANGES
from ingest.decode import (
    DecodedReading,
    DecodeError,
    Limits,
    Reason,
    check_size,
    decode_reading,
    load_json,
    parse_ts,
)

TTS = "tts"
CHIRPSTACK = "chirpstack"

# MQTT subscriptions for both servers' uplinks (ingest's topics are configurable).
DEFAULT_TOPICS: tuple[str, ...] = topics.LORAWAN_UP

# Decoded payload key -> Sigap field (or (field, scale)), for keys that common LoRaWAN codecs
# use. A device's own field_map is applied first and wins; then keys that already are
# Sigap field names; then this map. "battery" is taken as volts: map it per device otherwise.
DEFAULT_FIELD_MAP: Mapping[str, str | tuple[str, float]] = {
    "temperature": "temp_c",
    "temp": "temp_c",
    "smoke": "smoke_obs_pct_m",
    "smoke_obscuration": "smoke_obs_pct_m",
    "co": "co_ppm",
    "pm25": "pm25_ugm3",
    "pm2_5": "pm25_ugm3",
    "pm10": "pm10_ugm3",
    "humidity": "humidity_pct",
    "fill": "fill_pct",
    "level": "fill_pct",
    "fill_level": "fill_pct",
    "distance": "distance_mm",
    "tilt": "tilt_deg",
    "battery": "battery_v",
    "battery_mv": ("battery_v", 0.001),
    "battery_level": "battery_pct",
}


class UplinkError(DecodeError):
    """A LoRaWAN uplink that cannot be accepted; names the device as far as it is known."""

    def __init__(
        self,
        reason: str,
        detail: str,
        network_server: str | None = None,
        device_keys: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason, detail)
        self.network_server = network_server
        self.device_keys = device_keys  # registry keys to try (ns_device_id), DevEUI first


@dataclass(frozen=True, slots=True)
class Uplink:
    """One uplink from a network server, unpacked but not yet mapped to Sigap fields."""

    network_server: str  # TTS or CHIRPSTACK
    device_keys: tuple[str, ...]  # ns_device_id candidates: DevEUI (lowercase) first
    application: str  # from the topic: TTS "app@tenant", ChirpStack application UUID
    event_ms: int  # network server receive time, or the arrival time when it has none
    time_from_arrival: bool
    f_cnt: int
    rssi_dbm: float | None  # the best (highest) RSSI over the gateways that heard it
    gateway_ids: tuple[str, ...]
    decoded: dict[str, Any]
    # The same uplink, however many gateways or deliveries brought it, has one key:
    # (network server, device key, f_cnt, ChirpStack deduplicationId or the event time).
    dedup_key: tuple[str, str, int, str]

    @property
    def device_key(self) -> str:
        """The primary network-server id of the device (its DevEUI when known)."""
        return self.device_keys[0]


def topic_network_server(topic: str) -> tuple[str, str, str] | None:
    """(network server, application, device segment) for an uplink topic, else None."""
    return network_server_of(topic.split("/"))


def network_server_of(parts: Sequence[str]) -> tuple[str, str, str] | None:
    """topic_network_server for a topic already split at "/" (ingest splits it once)."""
    # Matched from the end, so that a bridge may put a prefix in front of either layout.
    if len(parts) >= 5 and parts[-5] == "v3" and parts[-3] == "devices" and parts[-1] == "up":
        return TTS, parts[-4], parts[-2]
    if (
        len(parts) >= 6
        and parts[-6] == "application"
        and parts[-4] == "device"
        and parts[-2] == "event"
        and parts[-1] == "up"
    ):
        return CHIRPSTACK, parts[-5], parts[-3]
    return None


def decode_uplink(
    topic: str, payload: bytes, arrival_ms: int, limits: Limits | None = None
) -> Uplink:
    """Unpack a TTS v3 or ChirpStack v4 uplink envelope; raises UplinkError (a DecodeError)."""
    limits = limits or Limits()
    where = topic_network_server(topic)
    if where is None:
        raise UplinkError(Reason.BAD_TOPIC, f"not a LoRaWAN uplink topic: {topic!r:.200}")
    server, application, segment = where
    keys = (segment.lower(),)
    try:
        check_size(payload, limits)
        try:
            envelope = load_json(payload)
        except DecodeError as exc:
            hint = " (set the ChirpStack MQTT integration to the JSON marshaler)"
            raise DecodeError(
                exc.reason, exc.detail + (hint if server == CHIRPSTACK else "")
            ) from None
        if not isinstance(envelope, dict):
            raise DecodeError(
                Reason.BAD_ENVELOPE,
                f"an uplink envelope must be a JSON object, got {type(envelope).__name__}",
            )
        if server == TTS:
            return _tts(envelope, application, segment, arrival_ms)
        return _chirpstack(envelope, application, segment, arrival_ms)
    except UplinkError:
        raise
    except DecodeError as exc:
        raise UplinkError(exc.reason, exc.detail, server, keys) from None


def _bad(detail: str) -> DecodeError:
    return DecodeError(Reason.BAD_ENVELOPE, detail)


def _object(parent: Mapping[str, Any], name: str, path: str) -> dict[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        what = "missing" if value is None else f"a {type(value).__name__}, not an object"
        raise _bad(f"{path}{name} is {what}")
    return value


def _dev_eui(value: Any, path: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) != 16 or not _is_hex(value):
        raise _bad(f"{path} must be 16 hex digits, got {value!r:.40}")
    return value.lower()


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _f_cnt(value: Any, path: str) -> int:
    if value is None:
        return 0  # the protobuf JSON mapping leaves zero out
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise _bad(f"{path} must be an unsigned 32-bit integer, got {value!r:.40}")
    return value


def _event_ms(value: Any, arrival_ms: int) -> tuple[int, bool]:
    if value is None or value == "":
        return arrival_ms, True
    return parse_ts(value), False


def _rx(
    entries: Any, path: str, gateway: Any, rssi_keys: tuple[str, ...]
) -> tuple[float | None, tuple[str, ...]]:
    if entries is None:
        return None, ()
    if not isinstance(entries, list):
        raise _bad(f"{path} must be a list")
    low, high = RANGES["rssi_dbm"]
    best: float | None = None
    gateways: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        gateway_id = gateway(entry)
        if isinstance(gateway_id, str) and gateway_id:
            gateways.append(gateway_id)
        for key in rssi_keys:
            rssi = entry.get(key)
            # Radio metadata must not cost the reading itself: odd values are skipped.
            if (
                isinstance(rssi, (int, float))
                and not isinstance(rssi, bool)
                and math.isfinite(rssi)
                and low <= rssi <= high
            ):
                best = float(rssi) if best is None else max(best, float(rssi))
                break
    return best, tuple(gateways)


def _tts(envelope: dict[str, Any], application: str, segment: str, arrival_ms: int) -> Uplink:
    ids = _object(envelope, "end_device_ids", "")
    device_id = ids.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise _bad("end_device_ids.device_id is missing")
    if device_id != segment:
        raise DecodeError(
            Reason.DEVICE_ID_MISMATCH,
            f"end_device_ids.device_id is {device_id!r:.80} but the topic is for {segment!r}",
        )
    dev_eui = _dev_eui(ids.get("dev_eui"), "end_device_ids.dev_eui")
    keys = (dev_eui, device_id) if dev_eui else (device_id,)
    try:
        message = _object(envelope, "uplink_message", "")
        decoded = message.get("decoded_payload")
        if decoded is None:
            raise DecodeError(
                Reason.NO_DECODED_PAYLOAD,
                "The Things Stack uplink has no uplink_message.decoded_payload: give the "
                "device (or its application) an uplink payload formatter",
            )
        if not isinstance(decoded, dict):
            raise _bad("uplink_message.decoded_payload must be an object")
        f_cnt = _f_cnt(message.get("f_cnt"), "uplink_message.f_cnt")
        event_ms, from_arrival = _event_ms(
            envelope.get("received_at") or message.get("received_at"), arrival_ms
        )
        rssi, gateways = _rx(
            message.get("rx_metadata"),
            "uplink_message.rx_metadata",
            lambda e: (e.get("gateway_ids") or {}).get("gateway_id"),
            ("rssi", "channel_rssi"),
        )
    except DecodeError as exc:
        raise UplinkError(exc.reason, exc.detail, TTS, keys) from None
    return Uplink(
        TTS,
        keys,
        application,
        event_ms,
        from_arrival,
        f_cnt,
        rssi,
        gateways,
        decoded,
        (TTS, keys[0], f_cnt, str(event_ms)),
    )


def _chirpstack(
    envelope: dict[str, Any], application: str, segment: str, arrival_ms: int
) -> Uplink:
    info = _object(envelope, "deviceInfo", "")
    dev_eui = _dev_eui(info.get("devEui"), "deviceInfo.devEui")
    if dev_eui is None:
        raise _bad("deviceInfo.devEui is missing")
    if dev_eui != segment.lower():
        raise DecodeError(
            Reason.DEVICE_ID_MISMATCH,
            f"deviceInfo.devEui is {dev_eui!r} but the topic is for {segment!r:.80}",
        )
    keys = (dev_eui,)
    try:
        decoded = envelope.get("object")
        if decoded is None:
            raise DecodeError(
                Reason.NO_DECODED_PAYLOAD,
                "ChirpStack uplink has no object: give the device profile a payload codec",
            )
        if not isinstance(decoded, dict):
            raise _bad("object must be a JSON object")
        f_cnt = _f_cnt(envelope.get("fCnt"), "fCnt")
        event_ms, from_arrival = _event_ms(envelope.get("time"), arrival_ms)
        dedup_id = envelope.get("deduplicationId")
        if dedup_id is not None and not isinstance(dedup_id, str):
            raise _bad("deduplicationId must be a string")
        rssi, gateways = _rx(
            envelope.get("rxInfo"), "rxInfo", lambda e: e.get("gatewayId"), ("rssi",)
        )
    except DecodeError as exc:
        raise UplinkError(exc.reason, exc.detail, CHIRPSTACK, keys) from None
    return Uplink(
        CHIRPSTACK,
        keys,
        application,
        event_ms,
        from_arrival,
        f_cnt,
        rssi,
        gateways,
        decoded,
        (CHIRPSTACK, dev_eui, f_cnt, dedup_id or str(event_ms)),
    )


def _lookup(decoded: Mapping[str, Any], path: str) -> Any:
    # A key as written first; else dots reach into nested objects ("sensor.temperature").
    if path in decoded:
        return decoded[path]
    node: Any = decoded
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


@dataclass(frozen=True, slots=True)
class _Target:
    field: str
    scale: float = 1.0
    unit: str | None = None  # the unit a bare number of the key is in (device profiles)
    strip: tuple[str, ...] = ()  # text the codec appends that is not a unit


def _target(target: Any) -> _Target:
    if isinstance(target, str):
        return _Target(target)
    if isinstance(target, tuple):
        return _Target(str(target[0]), float(target[1]))
    if isinstance(target, Mapping):
        return _Target(
            str(target["field"]),
            float(target.get("scale", 1.0)),
            target.get("unit"),
            tuple(target.get("strip", ())),
        )
    return _Target(str(target.field), float(target.scale))  # devices.schemas.FieldTarget


def _convert(value: Any, target: _Target) -> Any:
    """A decoded value in Sigap's unit where the map says how; anything else as it came."""
    if isinstance(value, str):
        for suffix in target.strip:
            if value.endswith(suffix):
                value = value[: -len(suffix)].rstrip()
                break
    if target.scale == 1.0 and target.unit is None:
        return value
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        number = units.plain_number(value)  # "3384" from a millivolt key; "3384 mV" says its unit
    if number is None or not math.isfinite(number):
        return value  # the reading decoder names what is wrong with it
    if target.unit is not None:
        return units.in_unit(target.field, number, target.unit)
    return number * target.scale


def map_fields(
    decoded: Mapping[str, Any],
    field_map: Mapping[str, Any] | None = None,
    skip: Collection[str] = (),
) -> dict[str, Any]:
    """Decoded payload -> Sigap reading fields: the device's map, then Sigap names, then defaults.

    A field map value is a Sigap field name or {"field": name, "scale": k} (a device
    profile's may give a "unit" instead, and "strip": text to take off the end). The first
    source that fills a field wins, and a key the device's map uses feeds nothing else; keys
    in `skip` (status strings already understood) feed nothing. Values are passed on as they
    are (converted when numeric): the reading decoder checks types and ranges.
    """
    out: dict[str, Any] = {}
    own = set(field_map or ())

    def put(source: str, spec: _Target, *, fallback: bool) -> None:
        if spec.field in out or source in skip or (fallback and source in own):
            return
        value = _lookup(decoded, source)
        if value is None:
            return
        out[spec.field] = _convert(value, spec)

    for source, target in (field_map or {}).items():
        put(source, _target(target), fallback=False)
    for source, spec in _FALLBACKS:
        put(source, spec, fallback=True)
    return out


# Sigap's own names, then the common codec keys: parsed once, as every uplink tries them.
_FALLBACKS: tuple[tuple[str, _Target], ...] = tuple(
    [(name, _Target(name)) for name in QUANTITIES]
    + [(source, _target(target)) for source, target in DEFAULT_FIELD_MAP.items()]
)


def read_status(
    decoded: Mapping[str, Any], status: Mapping[str, Mapping[str, Any]] | None
) -> tuple[set[str], dict[str, float], list[str]]:
    """What a device profile's status strings say: the keys they explain, the readings
    they set, and the faults they report ("distance: No Sensor")."""
    explained: set[str] = set()
    values: dict[str, float] = {}
    faults: list[str] = []
    for key, meanings in (status or {}).items():
        value = _lookup(decoded, key)
        if not isinstance(value, str):
            continue
        meaning = meanings.get(value)
        if meaning is None:
            continue  # not a status this profile knows: the reading decoder judges it
        explained.add(key)
        if meaning.action == "fault":
            faults.append(f"{key}: {value}"[:200])
        elif meaning.action == "set":
            values.update(meaning.values)
    return explained, values, faults


def reading_object(
    uplink: Uplink,
    field_map: Mapping[str, Any] | None = None,
    status: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The uplink as the reading object that ingest.decode.decode_reading validates, and
    the fault its status strings report (None if none).

    `ts` and `seq` are the decoded payload's own when it has them, else the network
    server's receive time and the frame counter.

    Raises UplinkError (no_quantity) when no decoded key maps to a Sigap field and no status
    string reports a fault: the gateway RSSI alone must not make a mis-mapped device look as
    if it reported.
    """
    explained, set_values, faults = read_status(uplink.decoded, status)
    obj = map_fields(uplink.decoded, field_map, explained)
    for name, value in set_values.items():
        obj.setdefault(name, value)
    fault = "; ".join(faults) or None
    if not obj and fault is None:
        keys = ", ".join(sorted(uplink.decoded)[:20]) or "none"
        raise UplinkError(
            Reason.NO_QUANTITY,
            f"no decoded payload key maps to a Sigap reading field (keys: {keys}); "
            "set the device's field_map",
            uplink.network_server,
            uplink.device_keys,
        )
    # A codec that reports its own measurement time and sequence number knows better than
    # the network server's receive time and frame counter (which resets on a rejoin).
    for name, envelope_value in (("ts", uplink.event_ms), ("seq", uplink.f_cnt)):
        own = uplink.decoded.get(name)
        if own is not None:
            obj[name] = own
        elif name == "seq" or not uplink.time_from_arrival:
            obj[name] = envelope_value
    if "rssi_dbm" not in obj and uplink.rssi_dbm is not None:
        obj["rssi_dbm"] = uplink.rssi_dbm
    return obj, fault


def to_reading(
    uplink: Uplink,
    device_id: str,
    field_map: Mapping[str, Any] | None,
    now_ms: int,
    limits: Limits | None = None,
    status: Mapping[str, Mapping[str, Any]] | None = None,
) -> DecodedReading:
    """Map and validate an uplink for a registered device; raises UplinkError."""
    obj, fault = reading_object(uplink, field_map, status)
    try:
        return decode_reading(obj, device_id, now_ms, limits or Limits(), fault)
    except DecodeError as exc:
        raise UplinkError(
            exc.reason, exc.detail, uplink.network_server, uplink.device_keys
        ) from None


class Deduplicator:
    """Remembers recent uplink keys, so an uplink delivered more than once is stored once.

    Bounded in time and size; time is passed in.
    """

    def __init__(self, window_ms: int = 15 * 60_000, max_keys: int = 200_000) -> None:
        self.window_ms = window_ms
        self.max_keys = max_keys
        self._seen: OrderedDict[Hashable, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: Hashable, now_ms: int) -> bool:
        """True if this key was seen within the window; otherwise remember it."""
        seen = self._seen
        while seen:
            oldest_key, at = next(iter(seen.items()))
            if at > now_ms - self.window_ms and len(seen) < self.max_keys:
                break
            del seen[oldest_key]
        if key in seen:
            return True
        seen[key] = now_ms
        return False
