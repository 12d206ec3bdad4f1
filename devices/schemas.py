"""API schemas for the device and gateway registry (XCreate / XUpdate / XPublic)."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from contract.readings import QUANTITIES, DeviceKind
from contract.thresholds import RuleParams, RulesConfigError
from devices import profiles

# Ids travel in MQTT topics and InfluxDB tags: no wildcards, slashes or whitespace.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]

# A DevEUI is 8 bytes; ChirpStack keys its topics by it, The Things Stack reports it.
DEV_EUI_RE = re.compile(r"^[0-9a-fA-F]{16}$")
# The Things Stack end-device ids: lowercase letters, digits and single dashes, 3..36 chars.
TTS_DEVICE_ID_RE = re.compile(r"^[a-z0-9](?:-?[a-z0-9]){2,35}$")


class DeviceStatus(StrEnum):
    """Lifecycle of a device: ingest refuses the readings of a retired one."""

    active = "active"
    maintenance = "maintenance"
    retired = "retired"


class NetworkServer(StrEnum):
    """The LoRaWAN network server a device's uplinks come from."""

    tts = "tts"  # The Things Stack v3
    chirpstack = "chirpstack"  # ChirpStack v4


class GatewayKind(StrEnum):
    """How a gateway reaches Sigap."""

    mqtt = "mqtt"  # publishes sigap/gateways/{id}/up batches
    tts = "tts"  # a LoRaWAN gateway on The Things Stack
    chirpstack = "chirpstack"  # a LoRaWAN gateway on ChirpStack


class GatewayStatus(StrEnum):
    """Lifecycle of a gateway."""

    active = "active"
    maintenance = "maintenance"
    retired = "retired"


class FieldTarget(BaseModel):
    """A field-map target with a scale, for payloads in other units (e.g. battery in mV)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="The Sigap reading field, e.g. battery_v.")
    scale: float = Field(default=1.0, description="Multiplies the decoded value.")

    @field_validator("scale")
    @classmethod
    def _finite_scale(cls, value: float) -> float:
        if not math.isfinite(value) or value == 0:
            raise ValueError("scale must be a finite, non-zero number")
        return value


FieldMap = dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], str | FieldTarget]


def _check_quantity(what: str, name: str) -> None:
    if name not in QUANTITIES:
        raise ValueError(
            f"{what}: {name!r} is not a reading field (one of: {', '.join(QUANTITIES)})"
        )


class DeviceCreate(BaseModel):
    """A device as a technician registers it."""

    model_config = ConfigDict(extra="forbid")

    id: DeviceId = Field(description="Unique id; also the MQTT topic segment and username.")
    kind: DeviceKind
    model: str = Field(default="", max_length=100, description="Make and model of the sensor.")
    name: str = Field(default="", max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str = Field(default="", max_length=300, description="Street address or landmark.")
    district: str = Field(default="", max_length=100, description="Kecamatan.")
    zone: str | None = Field(
        default=None, max_length=100, description="Building or site, used to confirm fires."
    )
    gateway_id: DeviceId | None = Field(
        default=None, description="The gateway this device reports through, if any."
    )
    reporting_interval_s: float | None = Field(
        default=None, gt=0, le=7 * 86400, description="How often the device reports."
    )
    install_date: date | None = Field(default=None, description="When it was installed.")
    status: DeviceStatus = Field(
        default=DeviceStatus.active, description="active, maintenance or retired."
    )
    depth_mm: float | None = Field(
        default=None, gt=0, le=10_000, description="Bins: distance from sensor to bin floor."
    )
    sensor_offsets: dict[str, float] | None = Field(
        default=None,
        description="Calibration: added to each reported value of that field, "
        'e.g. {"temp_c": -0.8}.',
    )
    rule_class: str | None = Field(
        default=None, max_length=64, description="Rule class from the rules file (default: kind)."
    )
    thresholds: dict[str, float | bool | str] | None = Field(
        default=None, description="Per-device rule parameter overrides (docs/rules.md)."
    )
    network_server: NetworkServer | None = Field(
        default=None, description="LoRaWAN devices: tts (The Things Stack v3) or chirpstack (v4)."
    )
    ns_device_id: str | None = Field(
        default=None,
        max_length=64,
        description="LoRaWAN devices: the DevEUI (16 hex digits; ChirpStack needs it), or "
        "The Things Stack end-device id; unique per network server.",
    )
    field_map: FieldMap | None = Field(
        default=None,
        description="LoRaWAN devices: decoded payload key (dots reach into objects) -> Sigap "
        'field, or {"field": ..., "scale": ...}; applied before the default map.',
    )
    profile: str | None = Field(
        default=None,
        max_length=64,
        description="The device profile id (GET /api/v1/profiles): its field map, status "
        "strings, reporting interval and mounting offset are the device's defaults; the "
        "device's own field_map, reporting_interval_s and sensor_offsets win.",
    )

    @field_validator("sensor_offsets")
    @classmethod
    def _check_offsets(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for name, offset in (value or {}).items():
            _check_quantity("sensor_offsets", name)
            if not math.isfinite(offset):
                raise ValueError(f"sensor_offsets: {name} must be a finite number")
        return value

    @field_validator("field_map")
    @classmethod
    def _check_field_map(cls, value: FieldMap | None) -> FieldMap | None:
        for source, target in (value or {}).items():
            name = target if isinstance(target, str) else target.field
            _check_quantity(f"field_map[{source!r}]", name)
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        # Messages start with the field they are about: the CSV import reports them per field.
        if self.kind is DeviceKind.bin and self.depth_mm is None:
            raise ValueError("depth_mm is required for a bin (fill is computed from it)")
        if self.kind is not DeviceKind.bin and self.depth_mm is not None:
            raise ValueError("depth_mm applies only to bins")
        if self.network_server is not None and not self.ns_device_id:
            raise ValueError(
                "ns_device_id is required for a LoRaWAN device (its DevEUI or TTS device id)"
            )
        if self.network_server is None and self.ns_device_id is not None:
            raise ValueError("ns_device_id needs network_server (tts or chirpstack)")
        if self.network_server is None and self.field_map:
            raise ValueError("field_map applies only to LoRaWAN devices (set network_server)")
        if self.ns_device_id is not None:
            self.ns_device_id = _ns_device_id(self.network_server, self.ns_device_id)
        if self.thresholds:
            try:
                RuleParams().override(self.thresholds)
            except RulesConfigError as exc:
                raise ValueError(f"thresholds: {exc}") from None
        self._check_profile()
        return self

    def _check_profile(self) -> None:
        if self.profile is None:
            return
        try:
            profiles.library().check(self.profile, self.kind.value, self.network_server is not None)
        except ValueError as exc:
            # Its messages start with "profile: ", as the CSV report needs.
            raise ValueError(str(exc)) from None


def _ns_device_id(server: NetworkServer | None, value: str) -> str:
    # DevEUIs are compared lowercased: TTS reports them upper case, ChirpStack lower case.
    if DEV_EUI_RE.match(value):
        return value.lower()
    if server is NetworkServer.chirpstack:
        raise ValueError(f"ns_device_id must be the 16-hex-digit DevEUI for ChirpStack: {value!r}")
    if not TTS_DEVICE_ID_RE.match(value):
        raise ValueError(
            "ns_device_id must be a DevEUI (16 hex digits) or a The Things Stack device id "
            f"(3-36 lowercase letters, digits and single dashes): {value!r}"
        )
    return value


class DeviceUpdate(BaseModel):
    """A partial update (PATCH): only the fields sent change; null clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    kind: DeviceKind | None = Field(default=None, description="Cannot change; checked only.")
    model: str | None = None
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    district: str | None = None
    zone: str | None = None
    gateway_id: str | None = None
    reporting_interval_s: float | None = None
    install_date: date | None = None
    status: DeviceStatus | None = None
    depth_mm: float | None = None
    sensor_offsets: dict[str, float] | None = None
    rule_class: str | None = None
    thresholds: dict[str, float | bool | str] | None = None
    network_server: NetworkServer | None = None
    ns_device_id: str | None = None
    field_map: dict[str, str | FieldTarget] | None = None
    profile: str | None = Field(default=None, description="null clears it.")

    def apply(self, device: DeviceCreate) -> DeviceCreate:
        """The device with this update applied, validated as a whole (ValidationError)."""
        changes = self.model_dump(exclude_unset=True)
        if changes.get("kind") is not None and changes["kind"] != device.kind:
            raise ValueError(
                f"kind cannot change ({device.kind.value} -> {changes['kind']}); "
                "retire this device and register a new one"
            )
        # Fields that may not be null take their current value back (PATCH null = unchanged).
        for name in ("kind", "model", "name", "lat", "lon", "address", "district", "status"):
            if name in changes and changes[name] is None:
                del changes[name]
        merged = device.model_dump(include=set(DeviceCreate.model_fields)) | changes
        return DeviceCreate.model_validate(merged)


class DevicePublic(DeviceCreate):
    """A registered device, as the API returns it."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    created_at: datetime
    updated_at: datetime | None = None
    last_seen_at: datetime | None = None

    def _check_profile(self) -> None:
        # A stored record stays readable when its profile has left the library since (an
        # operator's profile file removed): a write of it (PUT, PATCH) is checked again.
        pass


class DeviceDetail(DevicePublic):
    """One device with what a technician checks on site: its first (latest) reading."""

    last_reading: dict[str, Any] | None = Field(
        default=None, description="The newest stored reading (ts in RFC 3339), if any."
    )
    battery_v: float | None = Field(default=None, description="From the latest readings.")
    battery_pct: float | None = Field(default=None, description="From the latest readings.")
    rssi_dbm: float | None = Field(default=None, description="From the latest readings.")
    readings_error: str | None = Field(
        default=None, description="Why the readings above are missing (reading store down)."
    )


class ImportRowError(BaseModel):
    """One problem with one row of a CSV import."""

    row: int = Field(description="Row as a spreadsheet numbers it: the header is row 1.")
    field: str | None = Field(description="The column, when the problem is in one.")
    message: str


class ImportReport(BaseModel):
    """What a CSV import did (201) or why it did nothing (422)."""

    rows: int = Field(description="Data rows read.")
    created: int = Field(description="Devices registered (0 unless every row was valid).")
    errors: list[ImportRowError] = Field(default_factory=list)


def validation_messages(exc: ValidationError) -> list[tuple[str | None, str]]:
    """(field, message) pairs of a pydantic error, phrased for people, not for code."""
    out: list[tuple[str | None, str]] = []
    for error in exc.errors():
        loc = error.get("loc", ())
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        field: str | None = str(loc[0]) if loc else None
        if field is None:
            # Model-level checks name their field first ("depth_mm is required ...").
            first = message.split(" ", 1)[0].rstrip(":")
            field = first if first in DeviceCreate.model_fields else None
        elif len(loc) > 1:
            message = f"{'.'.join(str(p) for p in loc[1:])}: {message}"
        out.append((field, message))
    return out


class GatewayCreate(BaseModel):
    """A gateway as a technician registers it."""

    model_config = ConfigDict(extra="forbid")

    id: DeviceId = Field(description="Unique id; also the MQTT topic segment and username.")
    kind: GatewayKind = Field(description="mqtt, tts or chirpstack.")
    name: str = Field(default="", max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    status: GatewayStatus = GatewayStatus.active


class GatewayUpdate(BaseModel):
    """A partial update of a gateway (PATCH)."""

    model_config = ConfigDict(extra="forbid")

    kind: GatewayKind | None = None
    name: str | None = Field(default=None, max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    status: GatewayStatus | None = None


class GatewayPublic(GatewayCreate):
    """A registered gateway, as the API returns it."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    created_at: datetime
    updated_at: datetime | None = None
