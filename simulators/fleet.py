"""A simulated fleet placed around Sampit: fire detectors grouped into buildings, bins, and
air-quality stations (one per district, if asked for)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from contract import topics
from simulators.models import (
    AirParams,
    BinParams,
    DetectorParams,
    random_air_params,
    random_bin_params,
    random_detector_params,
)

Kind = Literal["fire", "bin", "air"]

METRES_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True, slots=True)
class District:
    """A kecamatan of Kotawaringin Timur: where its devices cluster and how widely."""

    name: str
    lat: float
    lon: float
    weight: float  # share of the fleet
    spread_m: float  # standard deviation of positions around the centre


# Sampit's three urban kecamatan get most devices; two upriver towns get a few.
DISTRICTS: tuple[District, ...] = (
    District("Mentawa Baru Ketapang", -2.545, 112.945, 0.34, 500.0),
    District("Baamang", -2.505, 112.955, 0.30, 500.0),
    # Across the Mentaya river from the city centre.
    District("Seranau", -2.535, 112.985, 0.14, 350.0),
    District("Kota Besi", -2.42, 112.93, 0.12, 300.0),
    District("Cempaga", -2.25, 113.05, 0.10, 300.0),
)

MIN_DETECTORS_PER_BUILDING = 2
MAX_DETECTORS_PER_BUILDING = 6
# Detectors of one building sit within this radius of its centre (so within ~2x of each
# other) and at least MIN_DETECTOR_SPACING_M apart, as on a real ceiling plan.
BUILDING_RADIUS_M = 12.0
MIN_DETECTOR_SPACING_M = 4.0
BIN_DEPTHS_MM = (900, 1300)


@dataclass(frozen=True, slots=True)
class SimDevice:
    """One simulated device: what the registry gets, plus the simulator's private traits."""

    id: str
    kind: Kind
    name: str
    lat: float
    lon: float
    district: str
    zone: str | None = None
    depth_mm: float | None = None
    gateway_id: str | None = None
    interval_s: float | None = None  # None: the run's interval (SimConfig.interval_s)
    # Position inside the building (metres east/north of its centre); fire detectors only.
    x_m: float = 0.0
    y_m: float = 0.0
    detector: DetectorParams | None = None
    bin: BinParams | None = None
    air: AirParams | None = None

    @property
    def topic(self) -> str:
        """MQTT topic this device publishes its readings to."""
        return topics.device_up(self.id)

    def registration(self) -> dict[str, Any]:
        """Body for POST /api/v1/devices (devices.schemas.DeviceCreate)."""
        body: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "lat": self.lat,
            "lon": self.lon,
            "district": self.district,
        }
        if self.zone is not None:
            body["zone"] = self.zone
        if self.depth_mm is not None:
            body["depth_mm"] = self.depth_mm
        if self.gateway_id is not None:
            body["gateway_id"] = self.gateway_id
        if self.interval_s is not None:
            body["reporting_interval_s"] = self.interval_s
        return body


@dataclass(frozen=True, slots=True)
class Building:
    """A building with fire detectors; its zone lets Sigap confirm a fire across detectors."""

    zone: str
    district: str
    lat: float
    lon: float
    detector_ids: tuple[str, ...]


@dataclass(frozen=True)
class Fleet:
    """All simulated devices (fire detectors first, then bins, then air stations), buildings."""

    devices: tuple[SimDevice, ...]
    buildings: tuple[Building, ...]
    gateways: tuple[str, ...] = ()
    id_prefix: str = "sim"  # scenario files may name "bldg-003" for "{prefix}-bldg-003"
    by_id: dict[str, SimDevice] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {d.id: d for d in self.devices})

    def resolve(self, name: str) -> str:
        """A device, zone or gateway id as a scenario names it: exact, or after the prefix."""
        if name in self.by_id or name in self.zones or name in self.gateways:
            return name
        return f"{self.id_prefix}-{name}"

    @property
    def zones(self) -> dict[str, Building]:
        """Buildings by zone id."""
        return {b.zone: b for b in self.buildings}

    def registrations(self) -> list[dict[str, Any]]:
        """Registry bodies for every device."""
        return [d.registration() for d in self.devices]

    def of_kind(self, kind: Kind) -> list[SimDevice]:
        """Devices of one kind, in fleet order."""
        return [d for d in self.devices if d.kind == kind]


def _offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    dlat = north_m / METRES_PER_DEG_LAT
    dlon = east_m / (METRES_PER_DEG_LAT * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def _scatter(rng: random.Random, district: District) -> tuple[float, float]:
    """A point around a district centre, within 2.5 sigma so nobody lands in the next town."""
    limit = 2.5 * district.spread_m
    east = max(-limit, min(limit, rng.gauss(0.0, district.spread_m)))
    north = max(-limit, min(limit, rng.gauss(0.0, district.spread_m)))
    return _offset(district.lat, district.lon, east, north)


def _building_sizes(rng: random.Random, total: int) -> list[int]:
    """Split `total` detectors into buildings of 2..6 (a single detector only if total is 1)."""
    sizes: list[int] = []
    remaining = total
    while remaining > 0:
        size = rng.randint(MIN_DETECTORS_PER_BUILDING, MAX_DETECTORS_PER_BUILDING)
        if remaining - size == 1:
            # Never leave a lone detector for the last building.
            size = size + 1 if size < MAX_DETECTORS_PER_BUILDING else size - 1
        size = min(size, remaining)
        sizes.append(size)
        remaining -= size
    return sizes


def _ceiling_plan(rng: random.Random, count: int) -> list[tuple[float, float]]:
    """Detector positions (metres from the building centre) with a minimum spacing."""
    points: list[tuple[float, float]] = []
    while len(points) < count:
        for _ in range(200):
            radius = BUILDING_RADIUS_M * math.sqrt(rng.random())
            angle = rng.uniform(0.0, 2.0 * math.pi)
            cand = (radius * math.cos(angle), radius * math.sin(angle))
            if all(math.dist(cand, p) >= MIN_DETECTOR_SPACING_M for p in points):
                break
        # After 200 tries the last candidate is accepted: spacing is a nicety, not a rule.
        points.append((round(cand[0], 2), round(cand[1], 2)))
    return points


def _width(count: int) -> int:
    return max(4, len(str(count)))


def generate_fleet(
    devices: int,
    fire_share: float = 0.6,
    seed: int = 7,
    id_prefix: str = "sim",
    gateways: int = 0,
    air_stations: int = 0,
) -> Fleet:
    """Build a fleet deterministically from `seed`: ids, places, buildings and device traits.

    `devices` counts fire detectors and bins; `air_stations` come on top, placed round the
    districts (largest first, like gateways) from a random stream of their own, so adding
    them moves no other device.
    """
    if devices < 0:
        raise ValueError("devices must be >= 0")
    if air_stations < 0:
        raise ValueError("air_stations must be >= 0")
    if not 0.0 <= fire_share <= 1.0:
        raise ValueError("fire_share must be within 0..1")
    rng = random.Random(f"sigap-fleet:{seed}")
    n_fire = round(devices * fire_share)
    n_bin = devices - n_fire
    weights = [d.weight for d in DISTRICTS]

    fleet_devices: list[SimDevice] = []
    buildings: list[Building] = []
    fire_width = _width(n_fire)
    bldg_width = 3
    fire_no = 0
    for b_no, size in enumerate(_building_sizes(rng, n_fire), start=1):
        district = rng.choices(DISTRICTS, weights)[0]
        b_lat, b_lon = _scatter(rng, district)
        zone = f"{id_prefix}-bldg-{b_no:0{bldg_width}d}"
        ids: list[str] = []
        for j, (x, y) in enumerate(_ceiling_plan(rng, size), start=1):
            fire_no += 1
            dev_id = f"{id_prefix}-fire-{fire_no:0{fire_width}d}"
            lat, lon = _offset(b_lat, b_lon, x, y)
            fleet_devices.append(
                SimDevice(
                    id=dev_id,
                    kind="fire",
                    name=f"Detektor kebakaran {j}/{size} {zone} ({district.name})",
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    district=district.name,
                    zone=zone,
                    x_m=x,
                    y_m=y,
                    detector=random_detector_params(rng),
                )
            )
            ids.append(dev_id)
        buildings.append(
            Building(zone, district.name, round(b_lat, 6), round(b_lon, 6), tuple(ids))
        )

    bin_width = _width(n_bin)
    for k in range(1, n_bin + 1):
        district = rng.choices(DISTRICTS, weights)[0]
        lat, lon = _scatter(rng, district)
        depth = float(rng.randrange(BIN_DEPTHS_MM[0], BIN_DEPTHS_MM[1] + 1, 10))
        fleet_devices.append(
            SimDevice(
                id=f"{id_prefix}-bin-{k:0{bin_width}d}",
                kind="bin",
                name=f"Tempat sampah {k:0{bin_width}d} ({district.name})",
                lat=round(lat, 6),
                lon=round(lon, 6),
                district=district.name,
                depth_mm=depth,
                bin=random_bin_params(rng, depth),
            )
        )
    fleet_devices.extend(place_air_stations(air_stations, seed, id_prefix))
    if gateways <= 0:
        return Fleet(tuple(fleet_devices), tuple(buildings), id_prefix=id_prefix)
    placed, gateway_ids = assign_gateways(fleet_devices, gateways, seed, id_prefix)
    return Fleet(tuple(placed), tuple(buildings), gateway_ids, id_prefix)


def place_air_stations(count: int, seed: int, id_prefix: str) -> list[SimDevice]:
    """`count` air-quality stations round the districts, largest first, near their centres."""
    rng = random.Random(f"sigap-air:{seed}")
    ranked = sorted(DISTRICTS, key=lambda d: -d.weight)
    width = _width(count)
    stations: list[SimDevice] = []
    for k in range(1, count + 1):
        district = ranked[(k - 1) % len(ranked)]
        # Stations sit on public buildings near the centre: a third of the devices' spread.
        lat, lon = _scatter(rng, replace(district, spread_m=district.spread_m / 3))
        stations.append(
            SimDevice(
                id=f"{id_prefix}-air-{k:0{width}d}",
                kind="air",
                name=f"Stasiun kualitas udara {k:0{width}d} ({district.name})",
                lat=round(lat, 6),
                lon=round(lon, 6),
                district=district.name,
                air=random_air_params(rng),
            )
        )
    return stations


def assign_gateways(
    devices: list[SimDevice], count: int, seed: int, id_prefix: str
) -> tuple[list[SimDevice], tuple[str, ...]]:
    """Put `count` gateways around the districts and attach each device to the nearest one."""
    # Its own random stream, so adding gateways does not move any device.
    rng = random.Random(f"sigap-gateways:{seed}")
    ranked = sorted(DISTRICTS, key=lambda d: -d.weight)
    sites: list[tuple[str, float, float]] = []
    for k in range(count):
        district = ranked[k % len(ranked)]
        lat, lon = _scatter(rng, district)
        sites.append((f"{id_prefix}-gw-{k + 1}", lat, lon))
    placed = []
    for device in devices:
        nearest = min(sites, key=lambda g: (g[1] - device.lat) ** 2 + (g[2] - device.lon) ** 2)
        placed.append(replace(device, gateway_id=nearest[0]))
    return placed, tuple(g[0] for g in sites)
