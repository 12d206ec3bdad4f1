"""SQL tables of the device registry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract.sqltypes import NAMING_CONVENTION, UTCDateTime


class Base(DeclarativeBase):
    """Declarative base for the registry's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DeviceRow(Base):
    """One registered device; rows are retired, never deleted (alerts refer to them)."""

    __tablename__ = "devices"
    __table_args__ = (
        # A network server's device id names one Sigap device; NULLs (MQTT devices) never clash.
        UniqueConstraint("network_server", "ns_device_id", name="uq_devices_ns_device"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    model: Mapped[str] = mapped_column(String(100), default="", server_default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(300), default="", server_default="")
    district: Mapped[str] = mapped_column(String(100), default="", index=True)
    zone: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    gateway_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reporting_interval_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    install_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(
        String(16), default="active", server_default="active", index=True
    )
    depth_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    sensor_offsets: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    rule_class: Mapped[str | None] = mapped_column(String(64), nullable=True)
    thresholds: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    network_server: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ns_device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    field_map: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # A device profile id (devices/profiles.py); not a foreign key: profiles are files.
    profile: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Indexed: with several ingest workers, each asks every few seconds which devices were
    # registered or changed since it last looked (`changed_since`); without the indexes
    # that is a scan of the whole fleet.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class GatewayRow(Base):
    """One registered gateway (MQTT batch gateway, or a LoRaWAN gateway on TTS / ChirpStack)."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(
        String(16), default="active", server_default="active", index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class BinStatusRow(Base):
    """A bin's fill, fill rate and time to full as the worker that owns it last computed
    them; read by the API process when several ingest workers share the fleet."""

    __tablename__ = "bin_status"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fill_pct: Mapped[float] = mapped_column(Float)
    rate_pct_per_h: Mapped[float | None] = mapped_column(Float, nullable=True)
    hours_to_full: Mapped[float | None] = mapped_column(Float, nullable=True)
    level: Mapped[int] = mapped_column(Integer)
    reading_ts_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
