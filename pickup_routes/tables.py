"""SQL tables of pickup routes: plans, routes, ordered stops and the stops' audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract.sqltypes import NAMING_CONVENTION, UTCDateTime


class Base(DeclarativeBase):
    """Declarative base for the routes tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RoutePlanRow(Base):
    """One planning run for a depot: its inputs, the bins it could not serve, and why."""

    __tablename__ = "route_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    depot_id: Mapped[str] = mapped_column(String(64), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # api, schedule
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    shift_start: Mapped[datetime] = mapped_column(UTCDateTime())
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    trucks: Mapped[int] = mapped_column(Integer)
    truck_capacity_l: Mapped[float] = mapped_column(Float)
    bin_volume_l: Mapped[float] = mapped_column(Float)
    service_s: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float] = mapped_column(Float)
    detour_factor: Mapped[float] = mapped_column(Float)
    distance_source: Mapped[str] = mapped_column(String(16))  # great_circle, matrix
    time_limit_s: Mapped[float] = mapped_column(Float)
    solve_s: Mapped[float] = mapped_column(Float)
    solver_status: Mapped[str] = mapped_column(String(100))
    distance_m: Mapped[float] = mapped_column(Float)
    unserved: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    excluded: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    __table_args__ = (
        # The scheduler plans each depot's shift once, even with several instances running.
        Index(
            "uq_route_plans_scheduled_shift",
            "depot_id",
            "shift_start",
            unique=True,
            sqlite_where=text("trigger = 'schedule'"),
            postgresql_where=text("trigger = 'schedule'"),
        ),
    )


class RouteRow(Base):
    """One truck's route within a plan."""

    __tablename__ = "routes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("route_plans.id"), index=True)
    depot_id: Mapped[str] = mapped_column(String(64), index=True)
    truck: Mapped[int] = mapped_column(Integer)  # 1-based within the plan
    start_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    distance_m: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    load_l: Mapped[float] = mapped_column(Float)
    capacity_l: Mapped[float] = mapped_column(Float)
    depot_lat: Mapped[float] = mapped_column(Float)
    depot_lon: Mapped[float] = mapped_column(Float)


class RouteStopRow(Base):
    """A bin on a route, in order, with what the crew and the bin's readings said."""

    __tablename__ = "route_stops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1-based order on the route
    bin_id: Mapped[str] = mapped_column(String(64), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    why: Mapped[str] = mapped_column(String(16))  # full, predicted_full
    fill_pct: Mapped[float | None] = mapped_column(Float, nullable=True)  # when planned
    eta: Mapped[datetime] = mapped_column(UTCDateTime())
    expected_fill_pct: Mapped[float] = mapped_column(Float)
    expected_load_l: Mapped[float] = mapped_column(Float)
    leg_m: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    skip_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fill_after_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    flag_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Event time of the reading last judged, so a flagged stop is judged again only on a
    # newer reading.
    checked_reading_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("uq_route_stops_route_bin", "route_id", "bin_id", unique=True),)


class RouteStopEventRow(Base):
    """The audit trail: who or what changed a stop, when, and how."""

    __tablename__ = "route_stop_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stop_id: Mapped[int] = mapped_column(ForeignKey("route_stops.id"), index=True)
    route_id: Mapped[int] = mapped_column(Integer, index=True)
    bin_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))  # done, skipped, confirmed, flagged
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[str] = mapped_column(String(500), default="")
