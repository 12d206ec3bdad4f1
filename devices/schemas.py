"""API schemas for the device registry (XCreate / XPublic)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from rules.params import RuleParams, RulesConfigError

# Ids travel in MQTT topics and InfluxDB tags: no wildcards, slashes or whitespace.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]


class DeviceKind(StrEnum):
    """What a registered device is."""

    fire = "fire"
    bin = "bin"


# Kinds as small integer codes, so that rules can mask numpy columns by kind.
KIND_CODES: dict[str, int] = {DeviceKind.fire.value: 1, DeviceKind.bin.value: 2}
KIND_NAMES: dict[int, str] = {code: name for name, code in KIND_CODES.items()}


class DeviceCreate(BaseModel):
    """A device as a technician registers it."""

    model_config = ConfigDict(extra="forbid")

    id: DeviceId = Field(description="Unique id; also the MQTT topic segment and username.")
    kind: DeviceKind
    name: str = Field(default="", max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    district: str = Field(default="", max_length=100, description="Kecamatan.")
    zone: str | None = Field(
        default=None, max_length=100, description="Building or site, used to confirm fires."
    )
    gateway_id: DeviceId | None = Field(
        default=None, description="The gateway this device reports through, if any."
    )
    depth_mm: float | None = Field(
        default=None, gt=0, le=10_000, description="Bins: distance from sensor to bin floor."
    )
    reporting_interval_s: float | None = Field(
        default=None, gt=0, le=7 * 86400, description="How often the device reports."
    )
    rule_class: str | None = Field(
        default=None, max_length=64, description="Rule class from the rules file (default: kind)."
    )
    thresholds: dict[str, float | bool | str] | None = Field(
        default=None, description="Per-device rule parameter overrides (docs/rules.md)."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind is DeviceKind.bin and self.depth_mm is None:
            raise ValueError("depth_mm is required for a bin (fill is computed from it)")
        if self.kind is not DeviceKind.bin and self.depth_mm is not None:
            raise ValueError("depth_mm applies only to bins")
        if self.thresholds:
            try:
                RuleParams().override(self.thresholds)
            except RulesConfigError as exc:
                raise ValueError(f"thresholds: {exc}") from None
        return self


class DevicePublic(DeviceCreate):
    """A registered device, as the API returns it."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    created_at: datetime
    last_seen_at: datetime | None = None
