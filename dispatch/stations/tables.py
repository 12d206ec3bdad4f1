"""SQL table of the stations registry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract.sqltypes import NAMING_CONVENTION, UTCDateTime


class Base(DeclarativeBase):
    """Declarative base for the stations table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StationRow(Base):
    """A fire station or a waste depot; the depot columns are NULL for fire stations."""

    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    district: Mapped[str] = mapped_column(String(100), default="", index=True)
    trucks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    truck_capacity_l: Mapped[float | None] = mapped_column(Float, nullable=True)
    truck_capacity_bins: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Local WIB wall-clock times as "HH:MM:SS" (portable across SQLite and PostgreSQL).
    shift_start: Mapped[str | None] = mapped_column(String(8), nullable=True)
    shift_end: Mapped[str | None] = mapped_column(String(8), nullable=True)
    collection_window_h: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
