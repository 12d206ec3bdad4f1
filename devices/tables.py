"""SQL tables of the device registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.sqltypes import UTCDateTime


class Base(DeclarativeBase):
    """Declarative base for the registry's tables."""

    metadata = MetaData()


class DeviceRow(Base):
    """One registered device."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    district: Mapped[str] = mapped_column(String(100), default="", index=True)
    zone: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    gateway_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    depth_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    reporting_interval_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    rule_class: Mapped[str | None] = mapped_column(String(64), nullable=True)
    thresholds: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
