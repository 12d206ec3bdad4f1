"""/api/v1/profiles: the device profiles a device can be registered with (devices/profiles.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from contract.readings import DeviceKind
from dashboard_api.inputs import JSON_CHECKED
from devices import profiles

router = APIRouter(prefix="/profiles", tags=["profiles"], dependencies=JSON_CHECKED)


class ProfileFieldTarget(BaseModel):
    """A codec key's Sigap field, with the unit or scale of its numbers (each only if set)."""

    field: str = Field(description="The Sigap reading field, e.g. distance_mm.")
    unit: str | None = Field(
        default=None, description="The unit a bare number of this key is in, e.g. mm."
    )
    scale: float | None = Field(default=None, description="Multiplies the decoded value.")
    strip: list[str] | None = Field(
        default=None,
        description='Text the codec appends to the number, taken off first ("(low battery)").',
    )


# A status string means a device fault, nothing, or Sigap field = value to set.
StatusMeaning = Literal["fault", "ignore"] | dict[str, float]


class ProfilePublic(BaseModel):
    """One model of sensor, as its profile file describes it."""

    id: str = Field(description="What a device's `profile` names; the file name without .toml.")
    vendor: str
    model: str
    kind: DeviceKind | None = Field(description="The device kind it is for; null: any kind.")
    description: str
    codec: str = Field(description="Where its payload formatter (codec) comes from.")
    reporting_interval_s: float | None = Field(
        description="Expected reporting interval: a device's default (its own wins)."
    )
    mounting_offset_mm: float | None = Field(
        description="Bins: added to each distance_mm (a device's sensor_offsets win)."
    )
    fields: dict[str, str | ProfileFieldTarget] = Field(
        description="Decoded payload key -> Sigap field, or the field with its unit or scale."
    )
    status: dict[str, dict[str, StatusMeaning]] = Field(
        description="Decoded payload key -> status string -> fault, ignore, or "
        "{Sigap field: value} to set."
    )


class ProfileList(BaseModel):
    """Every installed profile, by id."""

    profiles: list[ProfilePublic]


# Each field target shows only the keys its profile sets (as Profile.public() has them).
@router.get("", response_model_exclude_unset=True)
async def list_profiles() -> ProfileList:
    """The installed device profiles (shipped, and SIGAP_DEVICES_PROFILES_DIR's), by id."""
    return ProfileList.model_validate(
        {"profiles": [p.public() for p in sorted(profiles.library(), key=lambda p: p.id)]}
    )


@router.get("/{profile_id}", response_model_exclude_unset=True)
async def get_profile(profile_id: str) -> ProfilePublic:
    """One device profile (404 when no profile of that id is installed)."""
    library = profiles.library()
    found = library.get(profile_id)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"profile {profile_id!r} is not installed (known: {', '.join(library.ids())})",
        )
    return ProfilePublic.model_validate(found.public())
