"""Who may confirm whom: each fire detector's possible confirmation partners, looked up once.

Whether detector e can confirm detector d depends only on what the registry says (the same
zone, or a great-circle distance within d's `confirm_distance_m`), never on readings. So it
is worked out once per detector, the first time that detector alarms, from an index built
once: the fire detectors sorted by zone and by a grid cube at least that distance wide.
Devices registered or changed later are looked at one by one until there are many of
them; then the index is built again, at that registration. Confirmation looks only at a
detector's few neighbours, however many detectors are alarming elsewhere.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.readings import KIND_CODES
from rules.core import ParamTable
from rules.state import EngineState

EARTH_RADIUS_M = 6_371_000.0
_FIRE = KIND_CODES["fire"]
# Cubes a little wider than the reach, so that rounding can never put a partner two cubes off.
_SLACK = 1.01
_STEPS = (-1, 0, 1)
# Devices changed since the index was built that lookups test one by one before it is
# rebuilt (or 1 % of the fleet, if more).
_MOVED = 1_000


def distance_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in metres (haversine); NaN coordinates give NaN."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))


class Partners:
    """Each fire detector's possible confirmation partners (other fire detectors)."""

    def __init__(self, state: EngineState, table: ParamTable) -> None:
        self._state = state
        self._table = table
        self._devices = 0
        self._built = False
        self._of: dict[int, frozenset[int]] = {}
        # Fire detectors sorted by zone, and (those with a place) by grid cube: a lookup is a
        # binary search, and building them is two sorts, not a Python loop over the fleet.
        self._zones = self._cells = np.empty(0, np.int64)
        self._zone_members = self._cell_members = np.empty(0, np.int32)
        self._cube_m = 1.0
        self._offset = 0
        self._side = 1
        self._reach = 0.0  # the largest confirmation distance the cubes were sized for
        # Devices added or changed since the build: their entries in the sorted arrays
        # may be stale, so lookups skip them there and test each of them directly.
        self._moved: dict[int, None] = {}

    def changed(self, index: int, devices: int) -> None:
        """A device was added or changed (kind, zone, place or parameters)."""
        self._devices = devices
        if not self._built:
            return
        self._of = {}  # any detector's partners may gain or lose this one
        reach = self._table.profiles[int(self._state.profile[index])].confirm_distance_m
        if reach > self._reach or len(self._moved) >= max(_MOVED, devices // 100):
            # The cubes are too small now, or the overlay too long: rebuild here, in the
            # registration, rather than in a fire alarm's round.
            self._build()
        else:
            # Not re-sorted: looked at one by one, with what the registry says now.
            self._moved[index] = None

    def prepare(self) -> None:
        """Build the index now if it is not (it is otherwise built on the first alarm)."""
        if not self._built:
            self._build()

    def of(self, d: int) -> frozenset[int]:
        """The fire detectors other than d in d's zone or within d's confirmation distance."""
        found = self._of.get(d)
        if found is None:
            found = self._of[d] = self._find(d)
        return found

    def nbytes(self) -> int:
        """Memory held by the lookup structures (built on the first alarm)."""
        arrays = (self._zones, self._zone_members, self._cells, self._cell_members)
        # A cached partner set: the frozenset and its int objects (28 bytes each).
        cached = sum(sys.getsizeof(found) + 28 * len(found) for found in self._of.values())
        return sum(int(a.nbytes) for a in arrays) + cached

    def _find(self, d: int) -> frozenset[int]:
        if not self._built:
            self._build()
        st = self._state
        found: set[int] = set()
        zone = int(st.zone[d])
        if zone >= 0:
            found.update(_members(self._zones, self._zone_members, [zone], [zone]).tolist())
        lat, lon = float(st.lat[d]), float(st.lon[d])
        if len(self._cells) and math.isfinite(lat) and math.isfinite(lon):
            i, j, k = self._cube(lat, lon)
            m = self._side
            # The 27 cubes around d are 9 runs of 3 consecutive keys.
            runs = np.array([((i + a) * m + j + b) * m + k for a in _STEPS for b in _STEPS])
            others = _members(self._cells, self._cell_members, runs - 1, runs + 1)
            if len(others):
                reach = self._table.profiles[int(st.profile[d])].confirm_distance_m
                close = distance_m(lat, lon, st.lat[others], st.lon[others]) <= reach
                found.update(others[close].tolist())
        if self._moved:
            found.difference_update(self._moved)
            found.update(self._moved_partners(d, zone, lat, lon))
        found.discard(d)
        return frozenset(found)

    def _moved_partners(self, d: int, zone: int, lat: float, lon: float) -> list[int]:
        """The devices changed since the build that are d's partners now."""
        st = self._state
        moved = np.fromiter(self._moved, np.int64, len(self._moved))
        moved = moved[st.kind[moved] == _FIRE]
        reach = self._table.profiles[int(st.profile[d])].confirm_distance_m
        near = distance_m(lat, lon, st.lat[moved], st.lon[moved]) <= reach
        if zone >= 0:
            near |= st.zone[moved] == zone
        partners: list[int] = moved[near].tolist()
        return partners

    def _cube(self, lat: float, lon: float) -> tuple[int, int, int]:
        """The cube (one index per axis, from 1) around a point's place in space."""
        # The scalar twin of the arithmetic in _build: numpy on one-element arrays made a
        # first lookup about 50 us slower (measured), and a haze has thousands of them.
        p, q = math.radians(lat), math.radians(lon)
        scale = EARTH_RADIUS_M / self._cube_m
        xyz = (math.cos(p) * math.cos(q), math.cos(p) * math.sin(q), math.sin(p))
        i, j, k = (math.floor(c * scale) + self._offset for c in xyz)
        return i, j, k

    def _build(self) -> None:
        """The zone members and the grid of every placed fire detector."""
        self._built = True
        self._moved = {}
        self._of = {}
        st, n = self._state, self._devices
        fire = np.flatnonzero(st.kind[:n] == _FIRE)
        zone = st.zone[fire]
        self._zones, self._zone_members = _sorted_by(zone[zone >= 0], fire[zone >= 0])
        lat, lon = st.lat[fire], st.lon[fire]
        placed = np.isfinite(lat) & np.isfinite(lon)
        # The longest reach of any profile (a NaN reach confirms by zone only: a distance is
        # never <= NaN; a reach of 0 still pairs detectors at the very same place).
        reaches = self._table.column("confirm_distance_m")
        reach = self._reach = float(np.max(reaches[~np.isnan(reaches)], initial=0.0))
        if not placed.any():
            self._cells, self._cell_members = np.empty(0, np.int64), np.empty(0, np.int32)
            return
        # Cubes in space rather than cells of latitude and longitude: the straight line
        # between two points is never longer than the great circle, so every partner is in
        # one of the 27 cubes around a detector, at the poles and across the antimeridian
        # too. At least 10 m wide, so that the three indices fit one int64 key.
        self._cube_m = max(reach, 10.0) * _SLACK
        self._offset = math.ceil(EARTH_RADIUS_M / self._cube_m) + 2
        self._side = m = 2 * self._offset + 1
        p, q = np.radians(lat[placed]), np.radians(lon[placed])
        scale = EARTH_RADIUS_M / self._cube_m
        xyz = (np.cos(p) * np.cos(q), np.cos(p) * np.sin(q), np.sin(p))
        # (The arithmetic of _cube; the slack covers any rounding difference.)
        i, j, k = (np.floor(c * scale).astype(np.int64) + self._offset for c in xyz)
        self._cells, self._cell_members = _sorted_by((i * m + j) * m + k, fire[placed])


def _sorted_by(
    keys: npt.NDArray[np.integer], members: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Keys sorted (as int64: searchsorted would convert the whole array at every lookup
    with int64 values), and the members in the same order (as int32: 4 bytes each)."""
    order = np.argsort(keys)
    return keys[order].astype(np.int64), members[order].astype(np.int32)


def _members(
    keys: npt.NDArray[np.int64], members: npt.NDArray[np.int32], first: Any, last: Any
) -> npt.NDArray[np.int32]:
    """The members whose key is in one of the ranges first[i]..last[i] (keys sorted,
    members in the same order)."""
    lo = np.searchsorted(keys, first, "left").tolist()
    hi = np.searchsorted(keys, last, "right").tolist()
    runs = [members[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
    return np.concatenate(runs) if runs else np.empty(0, np.int32)
