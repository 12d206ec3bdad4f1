"""What a simulation run is asked to do, and what it reports back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from simulators.envelopes import ENVELOPES, EnvelopeName
from simulators.scenario_file import load_scenario_spec, scenario_path

# Device ids must fit devices.schemas.DEVICE_ID_PATTERN once "-fire-0001" is appended.
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}$")


@dataclass
class SimConfig:
    """Settings of one simulated fleet run (`sigap simulate`)."""

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 18830
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    api_url: str | None = "http://127.0.0.1:8000"  # None: do not register the fleet
    api_token: str | None = None  # sent as "Authorization: Bearer ..." when set
    devices: int = 300  # total fleet size
    fire_share: float = 0.6  # the rest are bins
    interval_s: float = 10.0  # each device reports this often (wall seconds)
    duration_s: float | None = None  # wall seconds; None: until stopped
    scenario: str = "demo"  # a shipped scenario (simulators/scenarios/NAME.toml) or a file
    seed: int = 7
    qos: int = 1
    id_prefix: str = "sim"  # device ids like sim-fire-0001, sim-bin-0001
    speed: float = 1.0  # model time runs this many times faster than the wall clock
    fleet_file: str | None = None  # CSV/JSON in the registry's format instead of generating
    gateways: int = 0  # generated fleets: gateways the devices report through (gw-1, ...)
    air_stations: int = 0  # generated fleets: PM2.5 stations on top of `devices` (air-1, ...)
    envelope: EnvelopeName = "direct"  # direct, gateway (batches), tts or chirpstack
    # "wall": ts is the wall clock. "model": ts follows model time, back-dated so the last
    # reading is stamped about now (needs duration_s): accelerated runs keep event time.
    event_time: Literal["wall", "model"] = "wall"
    rate: float | None = None  # fixed total readings/s (sets the interval from the fleet size)
    max_rate: bool = False  # as fast as possible, ignoring the schedule (bench/)

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError("devices must be at least 1")
        if not 0.0 <= self.fire_share <= 1.0:
            raise ValueError("fire_share must be within 0..1")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if self.duration_s is not None and self.duration_s < 0:
            raise ValueError("duration_s must be >= 0 (or None to run until stopped)")
        scenario_path(self.scenario)  # ValueError naming the shipped ones
        if self.envelope not in ENVELOPES:
            raise ValueError(f"envelope must be one of {', '.join(ENVELOPES)}")
        if self.event_time not in ("wall", "model"):
            raise ValueError("event_time must be wall or model")
        if self.event_time == "model" and self.duration_s is None:
            raise ValueError("event_time=model needs duration_s (readings are back-dated by it)")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.gateways < 0:
            raise ValueError("gateways must be >= 0")
        if self.air_stations < 0:
            raise ValueError("air_stations must be >= 0")
        if self.qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if not _PREFIX_RE.match(self.id_prefix):
            raise ValueError(
                "id_prefix must be 1..41 characters of letters, digits, '_', '.', ':' or '-'"
            )

    @classmethod
    def for_scenario(cls, scenario: str | Path, **overrides: Any) -> SimConfig:
        """A config with the scenario file's [fleet] and [run] values, then `overrides`."""
        spec = load_scenario_spec(scenario)
        base: dict[str, Any] = {
            "scenario": str(scenario),
            "devices": spec.fleet.devices,
            "fire_share": spec.fleet.fire_share,
            "gateways": spec.fleet.gateways,
            "air_stations": spec.fleet.air_stations,
            "interval_s": spec.run.interval_s,
            "speed": spec.run.speed,
            "event_time": spec.run.event_time,
        }
        if spec.seed is not None:
            base["seed"] = spec.seed
        if spec.fleet.file is not None and spec.path is not None:
            base["fleet_file"] = str((spec.path.parent / spec.fleet.file).resolve())
        if spec.run.until is not None and base["event_time"] == "model":
            base["duration_s"] = spec.run.until / base["speed"]
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown SimConfig fields: {sorted(unknown)}")
        # None means "the scenario's value" for what the scenario sets, and is kept as given
        # for the rest (api_url=None: do not register).
        merged = base | {k: v for k, v in overrides.items() if v is not None or k not in base}
        if merged.get("event_time") == "model" and merged.get("duration_s") is None:
            speed = float(merged["speed"])
            if spec.run.until is not None:
                merged["duration_s"] = spec.run.until / speed
        return cls(**merged)


@dataclass
class SimSummary:
    """The outcome of a run; `published` is exact (broker-acknowledged for QoS >= 1)."""

    published: int
    failed: int
    duration_s: float
    rate: float  # published readings per wall second
    registered: int
    by_kind: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # handed to the MQTT client
    skipped: int = 0  # report slots dropped because the publisher fell an interval behind
    devices: int = 0
    scenario: str = ""
    messages: int = 0  # MQTT messages acknowledged (a gateway batch carries many readings)
    faults: dict[str, int] = field(default_factory=dict)  # readings each fault touched
    envelope: str = "direct"

    def line(self) -> str:
        """One-line human summary."""
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_kind.items()))
        text = (
            f"simulated {self.devices:,} devices ({self.scenario}) for {self.duration_s:.1f}s: "
            f"published {self.published:,} readings ({self.rate:,.1f}/s; {kinds or 'none'}), "
            f"failed {self.failed:,}, registered {self.registered:,}"
        )
        if self.envelope != "direct":
            text += f", {self.messages:,} {self.envelope} messages"
        if self.faults:
            text += ", faults " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.faults.items()))
        if self.skipped:
            text += f", skipped {self.skipped:,} late slots"
        return text
