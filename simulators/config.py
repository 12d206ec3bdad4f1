"""What a simulation run is asked to do, and what it reports back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from simulators.scenario import SCENARIOS

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
    scenario: str = "demo"  # "demo" or "quiet"
    seed: int = 7
    qos: int = 1
    id_prefix: str = "sim"  # device ids like sim-fire-0001, sim-bin-0001
    speed: float = 1.0  # model time runs this many times faster than the wall clock

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError("devices must be at least 1")
        if not 0.0 <= self.fire_share <= 1.0:
            raise ValueError("fire_share must be within 0..1")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if self.duration_s is not None and self.duration_s < 0:
            raise ValueError("duration_s must be >= 0 (or None to run until stopped)")
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}")
        if self.qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if not _PREFIX_RE.match(self.id_prefix):
            raise ValueError(
                "id_prefix must be 1..41 characters of letters, digits, '_', '.', ':' or '-'"
            )


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

    def line(self) -> str:
        """One-line human summary."""
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_kind.items()))
        text = (
            f"simulated {self.devices:,} devices ({self.scenario}) for {self.duration_s:.1f}s: "
            f"published {self.published:,} readings ({self.rate:,.1f}/s; {kinds or 'none'}), "
            f"failed {self.failed:,}, registered {self.registered:,}"
        )
        if self.skipped:
            text += f", skipped {self.skipped:,} late slots"
        return text
