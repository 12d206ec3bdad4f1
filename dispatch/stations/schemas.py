"""API schemas of the stations registry (StationCreate / StationPublic)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from devices.schemas import DeviceId

# Kotawaringin Timur keeps Western Indonesian Time all year (no daylight saving).
WIB = timezone(timedelta(hours=7), "WIB")

# A local wall-clock time, read as "06:00" and written as "06:00:00". Not JSON Schema's
# `time` format: that is RFC 3339's, which needs an offset (clients validating the answer
# against the OpenAPI document refused "06:00:00").
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "examples": ["06:00"],
        }
    ),
]

DEPOT_FIELDS = (
    "trucks",
    "truck_capacity_l",
    "truck_capacity_bins",
    "shift_start",
    "shift_end",
    "collection_window_h",
)


class StationKind(StrEnum):
    """What a station is."""

    fire_station = "fire_station"
    waste_depot = "waste_depot"


class StationCreate(BaseModel):
    """A fire station or a waste depot as an administrator registers it."""

    model_config = ConfigDict(extra="forbid")

    id: DeviceId = Field(description="Unique id, e.g. `depot-baamang`.")
    kind: StationKind
    name: str = Field(default="", max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    district: str = Field(default="", max_length=100, description="Kecamatan.")
    trucks: int | None = Field(
        default=None, ge=1, le=500, description="Waste depots: trucks (one crew each) per shift."
    )
    truck_capacity_l: float | None = Field(
        default=None,
        gt=0,
        le=200_000,
        description="Waste depots: litres of bin contents one truck takes per shift "
        "(loose volume, as the bins hold it).",
    )
    truck_capacity_bins: float | None = Field(
        default=None,
        gt=0,
        le=5_000,
        description="Waste depots: the same in full bins of the standard volume "
        "(SIGAP_ROUTES_BIN_VOLUME_L, 660 L); give this or truck_capacity_l.",
    )
    shift_start: LocalTime | None = Field(
        default=None, description="Waste depots: crews leave at this local time (WIB, HH:MM)."
    )
    shift_end: LocalTime | None = Field(
        default=None,
        description="Waste depots: crews are back by this local time (WIB); "
        "earlier than shift_start means the next day.",
    )
    collection_window_h: float | None = Field(
        default=None,
        gt=0,
        le=168,
        description="Waste depots: hours from the shift start within which a bin predicted "
        "to be full is collected now (default: the shift length; 24 for a depot that "
        "passes once a day and must not let bins overflow before the next pass).",
    )

    @field_validator("shift_start", "shift_end")
    @classmethod
    def _local_time(cls, value: time | None) -> time | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("give the local WIB time without an offset, e.g. 06:00")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind is StationKind.fire_station:
            for name in DEPOT_FIELDS:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies only to waste depots")
            return self
        missing = [
            name for name in ("trucks", "shift_start", "shift_end") if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"a waste depot needs {', '.join(missing)}")
        if (self.truck_capacity_l is None) == (self.truck_capacity_bins is None):
            raise ValueError("a waste depot needs truck_capacity_l or truck_capacity_bins (one)")
        if self.shift_start == self.shift_end:
            raise ValueError("shift_end must differ from shift_start")
        return self

    def shift_length(self) -> timedelta:
        """How long a shift lasts (a shift may cross midnight); zero for fire stations."""
        if self.shift_start is None or self.shift_end is None:
            return timedelta(0)
        day = datetime(2000, 1, 1, tzinfo=UTC)
        start = datetime.combine(day, self.shift_start, UTC)
        end = datetime.combine(day, self.shift_end, UTC)
        return end - start if end > start else end + timedelta(days=1) - start

    def capacity_l(self, bin_volume_l: float) -> float | None:
        """One truck's capacity in litres (from bins when given in bins)."""
        if self.truck_capacity_l is not None:
            return self.truck_capacity_l
        if self.truck_capacity_bins is not None:
            return self.truck_capacity_bins * bin_volume_l
        return None


class StationPublic(StationCreate):
    """A registered station, as the API returns it."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    created_at: datetime
