"""Process settings, read from SIGAP_* environment variables (one object, nested per subsystem)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import topics


class MqttSettings(BaseSettings):
    """Broker connection for ingest, and the accounts that provision devices (SIGAP_MQTT_*)."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_MQTT_", extra="ignore")

    url: str = "mqtt://127.0.0.1:18830"
    # Sigap's service account (SIGAP_MQTT_USERNAME / SIGAP_MQTT_PASSWORD): ingest and the
    # alert publisher log in with it; on a broker with authentication it holds the
    # sigap-service role (reads sigap/# and LoRaWAN topics, writes sigap/alerts/#).
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    # The dynamic security plugin's admin (SIGAP_MQTT_ADMIN_USERNAME / _PASSWORD): the API
    # issues, re-keys and revokes device and gateway accounts with it (devices/provisioning/).
    # Unset: no broker accounts are managed (a broker with anonymous access).
    admin_username: str | None = None
    admin_password: str | None = Field(default=None, repr=False)
    # Development and tests only (SIGAP_MQTT_DEVELOPER_USERNAME / _PASSWORD): the account
    # `sigap simulate` publishes with, as any device; a production broker has none.
    developer_username: str | None = None
    developer_password: str | None = Field(default=None, repr=False)
    # mosquitto_dynamic_security.so, for brokers that sigap.devstack starts with
    # authentication (SIGAP_MQTT_DYNSEC_PLUGIN); unset: found in the usual lib folders.
    dynsec_plugin: Path | None = None
    client_id: str = "sigap-ingest"
    # QoS 1 with a persistent session: the broker keeps readings for us while we restart.
    qos: int = 1

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"SIGAP_MQTT_URL must look like mqtt://host:port, got {value!r}")
        return value

    @property
    def host(self) -> str:
        """Broker host name."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """Broker TCP port (1883 when the URL has none)."""
        return urlsplit(self.url).port or 1883


class InfluxSettings(BaseSettings):
    """InfluxDB v1-compatible HTTP API (SIGAP_INFLUX_*)."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_INFLUX_", extra="ignore")

    url: str = "http://127.0.0.1:18086"
    db: str = "sigap"
    token: str | None = None
    measurement: str = "readings"
    timeout_s: float = 10.0
    # Writes are batched; a batch that fails is retried with backoff up to this delay.
    max_retry_delay_s: float = 30.0
    # Readings waiting for InfluxDB; past this, ingest stops taking messages from the broker
    # (which keeps them in our persistent session) instead of growing memory.
    max_pending_readings: int = 2_000_000


class ApiSettings(BaseSettings):
    """HTTP API listener (SIGAP_API_*)."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Request bodies past these answer 413 before anything parses them (issue #22): every
    # route but the CSV import, and the import.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_import_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Live alert streams (consoles) at once; past it a new one gets 503 with Retry-After.
    max_streams: int = Field(default=500, ge=1)


class IngestSettings(BaseSettings):
    """Micro-batching and validation limits (SIGAP_INGEST_*)."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_INGEST_", extra="ignore")

    batch_size: int = Field(default=5000, ge=1)
    # A reading waits up to this long for others to share its batch: alert latency. 25 ms
    # halved the fire-alert p50 against 100 ms at no measurable CPU cost (BENCHMARKS.md);
    # under load batches fill up to batch_size first anyway.
    batch_window_ms: int = Field(default=25, ge=1)
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    # Sensor clocks: a reading more than this far in the future, or older than max_age, is
    # rejected (kept in the rejected store) rather than stored as if it were now.
    max_future_s: float = 300.0
    max_age_s: float = 7 * 24 * 3600.0
    rejected_keep: int = Field(default=10_000, ge=100)
    rejected_keep_days: float = Field(default=7.0, gt=0)  # and none older than this
    # Readings that InfluxDB cannot take yet go to a spool in the data dir, up to this many
    # bytes; past it, ingest stops acknowledging and the broker holds the rest.
    spool_max_bytes: int = Field(default=1024**3, ge=1024 * 1024)
    device_topics: str = topics.DEVICE_UP
    gateway_topics: str = topics.GATEWAY_UP
    # LoRaWAN network servers' uplink topics (The Things Stack v3, ChirpStack v4), comma
    # separated; empty to subscribe to none. An uplink heard by several gateways or
    # delivered twice within the dedup window is stored once.
    lorawan_topics: str = ",".join(topics.LORAWAN_UP)
    lorawan_dedup_window_s: float = Field(default=900.0, gt=0)
    # Several ingest workers on one broker (docs/deploy.md): every process is told how many
    # there are and which one it is (0..workers-1). Each takes a share of the topics
    # through an MQTT shared subscription ($share/{share_group}/...) and holds the rule
    # state of the devices it owns; readings of other devices go on to their owner.
    workers: int = Field(default=1, ge=1, le=256)
    worker: int = Field(default=0, ge=0)
    share_group: str = Field(default="sigap-ingest", pattern=r"^[A-Za-z0-9_.-]+$")
    # Fire detectors with no zone are owned by map cell (degrees), so that neighbours
    # that confirm one another are on one worker.
    partition_cell_deg: float = Field(default=0.02, gt=0)
    # A device's last-seen time goes to SQL when it is first seen, then at most this often
    # (the API reads the exact time from memory; SQL serves other processes and restarts).
    last_seen_write_s: float = Field(default=300.0, gt=0)
    # With several workers, each re-reads devices changed through the API this often.
    follow_registry_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _check_worker(self) -> IngestSettings:
        if self.worker >= self.workers:
            raise ValueError(
                f"SIGAP_INGEST_WORKER={self.worker} but SIGAP_INGEST_WORKERS={self.workers}: "
                f"workers are numbered 0..{self.workers - 1}"
            )
        return self

    @property
    def lorawan_topic_list(self) -> tuple[str, ...]:
        """The LoRaWAN topics to subscribe to."""
        return tuple(t.strip() for t in self.lorawan_topics.split(",") if t.strip())


class RulesSettings(BaseSettings):
    """Rule engine (SIGAP_RULES_*); thresholds live in the rules file (docs/rules.md)."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_RULES_", extra="ignore")

    file: Path | None = None  # TOML: [classes.NAME] and [devices.ID] parameter overrides
    # Readings are held this long (event time, or processing time) so that readings that
    # arrive out of order within it are evaluated in order; 0 evaluates at once.
    reorder_window_ms: int = Field(default=0, ge=0, le=60_000)
    offline_check_s: float = Field(default=10.0, gt=0)
    # Regional haze (docs/rules.md "Haze"): estimated every haze_check_s from the
    # detectors of each district (or map cell) when at least haze_min_detectors report.
    haze_enabled: bool = True
    haze_check_s: float = Field(default=60.0, gt=0)
    haze_min_detectors: int = Field(default=8, ge=1)
    # Below a median detector's haze this share of the outdoor haze is assumed when no
    # air-quality station tells the region's PM2.5.
    haze_typical_infiltration: float = Field(default=0.5, gt=0, le=1)


class DispatchSettings(BaseSettings):
    """Alert lifecycle and notifications (SIGAP_DISPATCH_*)."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_DISPATCH_", extra="ignore")

    # An unacknowledged fire alert is notified again, and proposed to the next station
    # (then a supervisor), after this long.
    escalate_after_s: float = Field(default=60.0, gt=0)
    escalation_check_s: float = Field(default=5.0, gt=0)
    proposed_stations: int = Field(default=3, ge=1, le=20)
    mqtt_alerts: bool = True  # publish alert changes on sigap/alerts/{category}/{device_id}
    webhook_poll_s: float = Field(default=1.0, gt=0)
    # With several ingest workers, the API process reads their alert changes this often.
    feed_poll_s: float = Field(default=0.05, gt=0)
    webhook_max_attempts: int = Field(default=20, ge=1)
    # Webhooks post only to public addresses; these networks (comma separated CIDR, a bare
    # address is one host: "10.20.0.0/16,127.0.0.1") are allowed too, e.g. a receiver on
    # the regency's own network. Empty: none.
    webhook_allow_nets: str = ""
    cap_sender: str = "sigap@kotimkab.go.id"

    @field_validator("webhook_allow_nets")
    @classmethod
    def _check_allow_nets(cls, value: str) -> str:
        for entry in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(entry)  # strict: 10.0.0.5/8 is a typo, not 10.0.0.0/8
            except ValueError as exc:
                raise ValueError(
                    f"SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS: {entry!r} is not a network "
                    f"(CIDR such as 10.20.0.0/16, or one address): {exc}"
                ) from None
        return value

    @property
    def webhook_allow_networks(self) -> tuple[str, ...]:
        """The allowlisted networks, one CIDR text each."""
        return tuple(p.strip() for p in self.webhook_allow_nets.split(",") if p.strip())


class RoutesSettings(BaseSettings):
    """Pickup route planning (SIGAP_ROUTES_*); depots and plan requests override these."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_ROUTES_", extra="ignore")

    # A 660 L wheelie bin, the common communal bin at Indonesian TPS; bins register only
    # their depth, so loads are fill x this volume.
    bin_volume_l: float = Field(default=660.0, gt=0)
    detour_factor: float = Field(default=1.3, ge=1)  # road distance / great-circle distance
    speed_kmh: float = Field(default=25.0, gt=0)  # a truck in town
    service_s: float = Field(default=90.0, ge=0)  # one pickup
    # Search time grows with the bins (0.5 s + 12 ms per bin) up to this.
    time_limit_s: float = Field(default=8.0, gt=0, le=120)
    plan_lead_min: float = Field(default=30.0, ge=0, le=24 * 60)  # plan a shift this early
    schedule: bool = True  # plan every depot's shifts automatically
    verify_interval_s: float = Field(default=60.0, gt=0)  # check done stops this often
    verify_within_h: float = Field(default=24.0, gt=0)  # no reading by then: flagged


class Settings(BaseSettings):
    """Everything one `sigap` process needs (SIGAP_*)."""

    model_config = SettingsConfigDict(env_prefix="SIGAP_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    admin_token: str | None = None
    # A console sign-in ends after this long unused (SIGAP_CONSOLE_SESSION_IDLE_H); each use
    # slides it forward, so a dispatcher's open console stays signed in through a shift.
    console_session_idle_h: float = Field(default=12.0, gt=0)
    # The console's map draws devices on a plain background with district labels; with a
    # tile server (an XYZ URL with {z}, {x}, {y}, e.g. one on the regency's network) it
    # draws the tiles under them. Its attribution is shown on the map, as tile licences ask.
    console_tile_url: str | None = None
    console_tile_attribution: str = ""
    log_level: str = "INFO"
    # More device profiles (TOML files, devices/README.md "Device profiles"), beside the
    # shipped ones; one with a shipped profile's name replaces it.
    devices_profiles_dir: Path | None = None

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    routes: RoutesSettings = Field(default_factory=RoutesSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)

    @property
    def sql_url(self) -> str:
        """SQLAlchemy URL: SIGAP_DATABASE_URL, or a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sigap.sqlite3').resolve()}"
