"""Pickup routes in SQL: plan a depot's shift, show routes, record what crews did, and
check with the bins' next readings that they were emptied."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.bins import BinStatus
from contract.readings import DeviceKind
from contract.timeutil import from_ms, to_ms
from devices.registry import DeviceRegistry
from devices.schemas import DevicePublic
from dispatch.model import AlertPublic
from dispatch.stations.registry import StationRegistry
from dispatch.stations.schemas import StationKind, StationPublic
from dispatch.store import AlertStore
from pickup_routes.geo import haversine_matrix, route_geojson
from pickup_routes.planner import PlanOptions
from pickup_routes.problem import PlanningError, PlanProblem, PlanResult, PlanStop
from pickup_routes.schemas import (
    ExcludedBin,
    PlanPublic,
    RoutePlanCreate,
    RoutePublic,
    RouteStatus,
    StopDone,
    StopEventPublic,
    StopPublic,
    StopSkip,
    StopStatus,
    UnservedBin,
)
from pickup_routes.selection import BinFacts, Chosen, Why, fill_at, select_bins
from pickup_routes.shifts import Shift, upcoming_shift
from pickup_routes.solver import Solver, solve_inline
from pickup_routes.tables import RoutePlanRow, RouteRow, RouteStopEventRow, RouteStopRow

log = logging.getLogger(__name__)

SYSTEM = "sigap"  # `by` of the changes Sigap makes itself
MANY = 1_000_000


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """Planning defaults (SIGAP_ROUTES_*); a depot and a plan request override them."""

    # A 660 L wheelie bin, the common communal bin at Indonesian TPS and markets.
    bin_volume_l: float = 660.0
    # Roads in Sampit run about 1.3x the straight line (river crossings are worse: give a
    # distance matrix there).
    detour_factor: float = 1.3
    speed_kmh: float = 25.0  # a loaded truck in town, stops included
    service_s: float = 90.0  # walk, hook, lift, empty, put back
    max_time_limit_s: float = 8.0
    plan_lead: timedelta = timedelta(minutes=30)
    verify_within: timedelta = timedelta(hours=24)


class RouteError(Exception):
    """A route request that cannot be carried out."""


class RouteNotFoundError(RouteError):
    """An unknown depot, route, plan, or a bin that is not on the route (HTTP 404)."""


class RouteInvalidError(RouteError):
    """A request that cannot be planned as asked (HTTP 422)."""


class RouteConflictError(RouteError):
    """A stop change that its current status does not allow (HTTP 409)."""


# What a crew may do to a stop in each status.
DONE_FROM = (StopStatus.planned.value, StopStatus.flagged.value)  # flagged: they came back
SKIP_FROM = (StopStatus.planned.value,)


@dataclass
class RouteService:
    """Plans, routes and stops (SQLAlchemy 2 async), fed by the registries, the alerts and
    the rule engine's bin predictions."""

    sessions: async_sessionmaker[AsyncSession]
    stations: StationRegistry
    devices: DeviceRegistry
    alerts: AlertStore
    bin_status: Callable[[str], BinStatus | None]
    emptied_pct: Callable[[str], float] = lambda _id: 30.0
    config: RouteConfig = field(default_factory=RouteConfig)
    solver: Solver = solve_inline
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- planning ------------------------------------------------------------------------

    async def plan(
        self, request: RoutePlanCreate, trigger: str = "api", shift: Shift | None = None
    ) -> PlanPublic:
        """Select the depot's bins, plan its trucks' routes and store them."""
        now = self.clock()
        depot = await self._depot(request.depot_id)
        cfg = self.config
        if shift is None and request.start is not None:
            start = request.start.astimezone(UTC)
            shift = Shift(start, start + depot.shift_length())
        else:
            if shift is None:
                shift = upcoming_shift(*_shift_times(depot), now)
            start = max(now, shift.start)
        end = request.end.astimezone(UTC) if request.end else shift.end
        if end <= start:
            raise RouteInvalidError(f"the route would end ({end}) before it starts ({start})")
        window = timedelta(hours=depot.collection_window_h or 0) or shift.length
        window_end = shift.start + window
        volume = request.bin_volume_l or cfg.bin_volume_l
        capacity = request.truck_capacity_l or depot.capacity_l(volume)
        assert capacity is not None  # a depot always has one (StationCreate checks)
        trucks = request.trucks or depot.trucks or 1

        facts = await self._bins(depot, request.bin_ids, now)
        selection = select_bins(facts, to_ms(window_end))
        chosen = selection.chosen
        unserved: list[UnservedBin] = []
        matrix = request.distance_matrix
        distances = durations = None
        if matrix is not None:
            position = {id_: i for i, id_ in enumerate(matrix.ids)}
            if depot.id not in position:
                raise RouteInvalidError(f"distance_matrix.ids must include the depot {depot.id!r}")
            missing = [c for c in chosen if c.bin.id not in position]
            chosen = [c for c in chosen if c.bin.id in position]
            for c in missing:
                unserved.append(_unserved(c, volume, end, "not in the supplied distance matrix"))
            order = [position[depot.id], *(position[c.bin.id] for c in chosen)]
            distances = np.asarray(matrix.metres, np.float64)[np.ix_(order, order)]
            if matrix.seconds is not None:
                durations = np.asarray(matrix.seconds, np.float64)[np.ix_(order, order)]

        end_ms = to_ms(end)
        problem = PlanProblem(
            depot_lat=depot.lat,
            depot_lon=depot.lon,
            # The truck must hold the bin whenever it gets there: count each bin at its
            # predicted fill at the end of the shift, an upper bound on its fill at the visit.
            stops=[
                PlanStop(
                    c.bin.id,
                    c.bin.lat,
                    c.bin.lon,
                    volume * fill_at(c.bin.status, end_ms) / 100,
                    must=c.why is Why.full,
                )
                for c in chosen
            ],
            trucks=trucks,
            capacity_l=capacity,
            shift_s=(end - start).total_seconds(),
            service_s=request.service_s if request.service_s is not None else cfg.service_s,
            speed_kmh=request.speed_kmh or cfg.speed_kmh,
            detour_factor=request.detour_factor or cfg.detour_factor,
            distances_m=distances,
            durations_s=durations,
        )
        options = PlanOptions(
            time_limit_s=request.time_limit_s, max_time_limit_s=cfg.max_time_limit_s
        )
        try:
            result = await self.solver(problem, options)
        except PlanningError as exc:
            raise RouteInvalidError(str(exc)) from None
        for gone in result.unserved:
            unserved.append(_unserved(chosen[gone.stop], volume, end, gone.reason))
        excluded = [
            ExcludedBin(bin_id=f.id, reason=reason.value, route_id=f.on_route)
            for f, reason in selection.excluded
        ]
        plan_id = await self._store(
            depot,
            request,
            trigger,
            now,
            shift,
            start,
            end,
            window_end,
            problem,
            result,
            chosen,
            volume,
            matrix is not None,
            unserved,
            excluded,
        )
        if plan_id is None:
            raise RouteConflictError(f"shift {shift.start} of {depot.id} is already planned")
        found = await self.get_plan(plan_id)
        assert found is not None
        log.info(
            "planned %s (%s): %d routes, %d bins, %d unserved, %.1f km in %.1f s",
            depot.id,
            trigger,
            len(found.routes),
            sum(len(r.stops) for r in found.routes),
            len(unserved),
            result.distance_m / 1000,
            result.solve_s,
        )
        return found

    async def plan_shift(self, depot_id: str) -> PlanPublic | None:
        """The scheduled planning of a depot's next shift; None when it is not due yet or
        already planned (so that a restart or a second instance never plans it twice)."""
        now = self.clock()
        depot = await self.stations.get(depot_id)
        if depot is None or depot.kind is not StationKind.waste_depot:
            return None
        shift = upcoming_shift(*_shift_times(depot), now)
        # A minute of grace: the scheduler may fire a little early.
        if now < shift.start - self.config.plan_lead - timedelta(minutes=1):
            return None
        async with self.sessions() as session:
            planned = await session.scalar(
                select(RoutePlanRow.id).where(
                    RoutePlanRow.depot_id == depot_id,
                    RoutePlanRow.trigger == "schedule",
                    RoutePlanRow.shift_start == shift.start,
                )
            )
        if planned is not None:
            return None
        request = RoutePlanCreate(depot_id=depot_id, by=SYSTEM)
        try:
            return await self.plan(request, trigger="schedule", shift=shift)
        except RouteConflictError:
            return None

    async def _depot(self, depot_id: str) -> StationPublic:
        depot = await self.stations.get(depot_id)
        if depot is None:
            raise RouteNotFoundError(f"depot {depot_id!r} is not registered")
        if depot.kind is not StationKind.waste_depot:
            raise RouteInvalidError(f"station {depot_id!r} is a {depot.kind.value}, not a depot")
        return depot

    async def _bins(
        self, depot: StationPublic, bin_ids: Sequence[str] | None, now: datetime
    ) -> list[BinFacts]:
        """The depot's bins with their fill, fire and route state."""
        if bin_ids is not None:
            devices = await self.devices.get_many(set(bin_ids))
            known = {d.id for d in devices if d.kind is DeviceKind.bin}
            unknown = sorted(set(bin_ids) - known)
            if unknown:
                raise RouteInvalidError(f"not registered bins: {', '.join(unknown)}")
            devices = [d for d in devices if d.kind is DeviceKind.bin]
        else:
            devices = await self.devices.find(kind=DeviceKind.bin.value, limit=MANY)
            devices = await self._nearest_to(depot, devices)
        burning = {a.device_id for a in await self._active("bin.fire")}
        full = {a.device_id for a in await self._active("bin.full")}
        on_route = await self._pending_stops(now)
        facts = [
            BinFacts(
                id=d.id,
                lat=d.lat,
                lon=d.lon,
                status=self.bin_status(d.id),
                burning=d.id in burning,
                full_alert=d.id in full,
                on_route=on_route.get(d.id),
            )
            for d in sorted(devices, key=lambda d: d.id)
        ]
        return facts

    async def _active(self, kind: str) -> list[AlertPublic]:
        return await self.alerts.find(kind=kind, active=True, limit=MANY)

    async def _nearest_to(
        self, depot: StationPublic, bins: list[DevicePublic]
    ) -> list[DevicePublic]:
        """The bins closer to this depot than to any other (great-circle)."""
        depots = await self.stations.find(kind=StationKind.waste_depot.value, limit=MANY)
        if len(depots) <= 1 or not bins:
            return bins
        lat = [d.lat for d in depots] + [b.lat for b in bins]
        lon = [d.lon for d in depots] + [b.lon for b in bins]
        to_depots = haversine_matrix(lat, lon)[len(depots) :, : len(depots)]
        mine = [d.id for d in depots].index(depot.id)
        # Ties go to the first depot by id, so that every bin has exactly one depot.
        nearest = np.argmin(to_depots, axis=1)
        return [b for b, k in zip(bins, nearest.tolist(), strict=True) if k == mine]

    async def _pending_stops(self, now: datetime) -> dict[str, int]:
        """Bin id -> route id for bins a running route will still collect."""
        query = (
            select(RouteStopRow.bin_id, RouteStopRow.route_id)
            .join(RouteRow, RouteRow.id == RouteStopRow.route_id)
            .where(RouteStopRow.status == StopStatus.planned.value, RouteRow.end_at > now)
        )
        async with self.sessions() as session:
            return {bin_id: route_id for bin_id, route_id in await session.execute(query)}

    async def _store(
        self,
        depot: StationPublic,
        request: RoutePlanCreate,
        trigger: str,
        now: datetime,
        shift: Shift,
        start: datetime,
        end: datetime,
        window_end: datetime,
        problem: PlanProblem,
        result: PlanResult,
        chosen: list[Chosen],
        volume: float,
        from_matrix: bool,
        unserved: list[UnservedBin],
        excluded: list[ExcludedBin],
    ) -> int | None:
        plan = RoutePlanRow(
            depot_id=depot.id,
            trigger=trigger,
            by=request.by,
            planned_at=now,
            shift_start=shift.start,
            start_at=start,
            end_at=end,
            window_end=window_end,
            trucks=problem.trucks,
            truck_capacity_l=problem.capacity_l,
            bin_volume_l=volume,
            service_s=problem.service_s,
            speed_kmh=problem.speed_kmh,
            detour_factor=problem.detour_factor,
            distance_source="matrix" if from_matrix else "great_circle",
            time_limit_s=result.time_limit_s,
            solve_s=round(result.solve_s, 3),
            solver_status=result.status[:100],
            distance_m=round(result.distance_m, 1),
            unserved=[u.model_dump() for u in unserved],
            excluded=[e.model_dump() for e in excluded],
        )
        async with self.sessions() as session:
            session.add(plan)
            try:
                await session.flush()
            except IntegrityError:
                return None  # this shift was planned by someone else meanwhile
            for truck in result.routes:
                route = RouteRow(
                    plan_id=plan.id,
                    depot_id=depot.id,
                    truck=truck.truck + 1,
                    start_at=start,
                    end_at=end,
                    distance_m=round(truck.distance_m, 1),
                    duration_s=round(truck.duration_s, 1),
                    load_l=0.0,
                    capacity_l=problem.capacity_l,
                    depot_lat=depot.lat,
                    depot_lon=depot.lon,
                )
                session.add(route)
                await session.flush()
                load = 0.0
                for seq, visit in enumerate(truck.visits, start=1):
                    c = chosen[visit.stop]
                    eta = start + timedelta(seconds=visit.arrival_s)
                    expected = fill_at(c.bin.status, to_ms(eta))
                    litres = round(volume * expected / 100, 1)
                    load += litres
                    session.add(
                        RouteStopRow(
                            route_id=route.id,
                            seq=seq,
                            bin_id=c.bin.id,
                            lat=c.bin.lat,
                            lon=c.bin.lon,
                            why=c.why.value,
                            fill_pct=_round(c.bin.status.fill_pct if c.bin.status else None),
                            eta=eta,
                            expected_fill_pct=round(expected, 1),
                            expected_load_l=litres,
                            leg_m=round(visit.leg_m, 1),
                            status=StopStatus.planned.value,
                            updated_at=now,
                        )
                    )
                route.load_l = round(load, 1)
            await session.commit()
            return plan.id

    # -- reading -------------------------------------------------------------------------

    async def get_plan(self, plan_id: int) -> PlanPublic | None:
        """One plan with its routes."""
        async with self.sessions() as session:
            plan = await session.get(RoutePlanRow, plan_id)
            if plan is None:
                return None
            rows = list(
                await session.scalars(
                    select(RouteRow).where(RouteRow.plan_id == plan_id).order_by(RouteRow.truck)
                )
            )
            routes = await _publics(session, rows)
        return PlanPublic(
            id=plan.id,
            depot_id=plan.depot_id,
            trigger=plan.trigger,
            by=plan.by,
            planned_at=plan.planned_at,
            shift_start=plan.shift_start,
            start_at=plan.start_at,
            end_at=plan.end_at,
            window_end=plan.window_end,
            trucks=plan.trucks,
            truck_capacity_l=plan.truck_capacity_l,
            bin_volume_l=plan.bin_volume_l,
            service_s=plan.service_s,
            speed_kmh=plan.speed_kmh,
            detour_factor=plan.detour_factor,
            distance_source=plan.distance_source,
            time_limit_s=plan.time_limit_s,
            solve_s=plan.solve_s,
            solver_status=plan.solver_status,
            distance_m=plan.distance_m,
            routes=routes,
            unserved=[UnservedBin.model_validate(u) for u in plan.unserved],
            excluded=[ExcludedBin.model_validate(e) for e in plan.excluded],
        )

    async def get(self, route_id: int) -> RoutePublic | None:
        """One route with its stops."""
        async with self.sessions() as session:
            row = await session.get(RouteRow, route_id)
            if row is None:
                return None
            (public,) = await _publics(session, [row])
            return public

    async def find(
        self,
        *,
        depot_id: str | None = None,
        plan_id: int | None = None,
        status: RouteStatus | None = None,
        flagged: bool | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RoutePublic]:
        """Routes, newest first, filtered."""
        query = select(RouteRow).order_by(RouteRow.id.desc()).limit(limit).offset(offset)
        if depot_id:
            query = query.where(RouteRow.depot_id == depot_id)
        if plan_id is not None:
            query = query.where(RouteRow.plan_id == plan_id)
        if since is not None:
            query = query.where(RouteRow.start_at >= since)

        def has(*conditions: Any) -> Any:
            return exists().where(RouteStopRow.route_id == RouteRow.id, *conditions)

        planned = RouteStopRow.status == StopStatus.planned.value
        if flagged is not None:
            is_flagged = has(RouteStopRow.status == StopStatus.flagged.value)
            query = query.where(is_flagged if flagged else ~is_flagged)
        if status is RouteStatus.planned:
            query = query.where(~has(~planned))
        elif status is RouteStatus.completed:
            query = query.where(~has(planned))
        elif status is RouteStatus.in_progress:
            query = query.where(and_(has(planned), has(~planned)))
        async with self.sessions() as session:
            return await _publics(session, list(await session.scalars(query)))

    # -- crews ---------------------------------------------------------------------------

    async def mark_done(self, route_id: int, bin_id: str, done: StopDone) -> StopPublic:
        """A crew emptied the bin; its next readings will confirm it."""
        now = self.clock()
        at = done.at.astimezone(UTC) if done.at else now
        if at > now + timedelta(minutes=5):
            raise RouteInvalidError("at is in the future")
        values = {
            "status": StopStatus.done.value,
            "done_at": at,
            "by": done.by,
            "confirmed_at": None,
            "fill_after_pct": None,
            "flagged_at": None,
            "flag_reason": None,
            "checked_reading_ms": None,
            "updated_at": now,
        }
        return await self._change(route_id, bin_id, DONE_FROM, values, "done", done.by, "")

    async def mark_skipped(self, route_id: int, bin_id: str, skip: StopSkip) -> StopPublic:
        """A crew could not empty the bin (the reason is kept)."""
        values = {
            "status": StopStatus.skipped.value,
            "by": skip.by,
            "skip_reason": skip.reason,
            "updated_at": self.clock(),
        }
        return await self._change(
            route_id, bin_id, SKIP_FROM, values, "skipped", skip.by, skip.reason
        )

    async def _change(
        self,
        route_id: int,
        bin_id: str,
        allowed: tuple[str, ...],
        values: dict[str, Any],
        event: str,
        by: str | None,
        detail: str,
    ) -> StopPublic:
        async with self.sessions() as session:
            stop = await self._stop(session, route_id, bin_id)
            # Conditional update: of two crews' taps at once, only one changes the stop.
            changed = await session.scalar(
                update(RouteStopRow)
                .where(RouteStopRow.id == stop.id, RouteStopRow.status.in_(allowed))
                .values(**values)
                .returning(RouteStopRow.id)
            )
            if changed is None:
                await session.rollback()
                stop = await self._stop(session, route_id, bin_id)
                raise RouteConflictError(
                    f"stop {bin_id!r} on route {route_id} is {stop.status}; "
                    f"it can be marked {event} only when {' or '.join(allowed)}"
                )
            session.add(
                RouteStopEventRow(
                    stop_id=stop.id,
                    route_id=route_id,
                    bin_id=bin_id,
                    type=event,
                    at=values["updated_at"],
                    by=by,
                    detail=detail,
                )
            )
            await session.commit()
            await session.refresh(stop)
            return StopPublic.model_validate(stop)

    async def _stop(self, session: AsyncSession, route_id: int, bin_id: str) -> RouteStopRow:
        stop = await session.scalar(
            select(RouteStopRow).where(
                RouteStopRow.route_id == route_id, RouteStopRow.bin_id == bin_id
            )
        )
        if stop is None:
            if await session.get(RouteRow, route_id) is None:
                raise RouteNotFoundError(f"route {route_id} not found")
            raise RouteNotFoundError(f"bin {bin_id!r} is not on route {route_id}")
        return stop

    async def events(self, route_id: int) -> list[StopEventPublic]:
        """The audit trail of a route's stops, oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(RouteStopEventRow)
                .where(RouteStopEventRow.route_id == route_id)
                .order_by(RouteStopEventRow.id)
            )
            return [StopEventPublic.model_validate(r) for r in rows]

    # -- checks (a periodic job) -----------------------------------------------------------

    async def verify(self) -> dict[str, int]:
        """Judge done stops by the bins' next readings, and take burning bins off routes.

        A done stop is confirmed by the first fill reading after it whose fill is below the
        bin's emptied threshold; a later reading at or above it flags the stop (a newer one
        below it confirms it after all); no reading within `verify_within` flags it too.
        """
        now = self.clock()
        counts = {"confirmed": 0, "flagged": 0, "skipped_burning": 0}
        oldest = now - self.config.verify_within
        burning = {a.device_id: a.id for a in await self._active("bin.fire")}
        async with self.sessions() as session:
            candidates = await session.scalars(
                select(RouteStopRow).where(
                    (
                        (RouteStopRow.status == StopStatus.done.value)
                        & RouteStopRow.confirmed_at.is_(None)
                    )
                    | (
                        (RouteStopRow.status == StopStatus.flagged.value)
                        & RouteStopRow.checked_reading_ms.is_not(None)
                        & (RouteStopRow.done_at >= oldest)
                    )
                )
            )
            events: list[RouteStopEventRow] = []
            for stop in candidates:
                change = self._judge(stop, now, oldest)
                if change is not None:
                    counts[change] += 1
                    detail = stop.flag_reason if change == "flagged" else ""
                    events.append(_event(stop, change, now, detail or ""))
            if burning:
                on_fire = await session.scalars(
                    select(RouteStopRow)
                    .join(RouteRow, RouteRow.id == RouteStopRow.route_id)
                    .where(
                        RouteStopRow.status == StopStatus.planned.value,
                        RouteStopRow.bin_id.in_(burning),
                        RouteRow.end_at > now,
                    )
                )
                for stop in on_fire:
                    stop.status = StopStatus.skipped.value
                    stop.by = SYSTEM
                    stop.skip_reason = (
                        f"bin on fire (alert {burning[stop.bin_id]}): keep away until it "
                        "is resolved"
                    )
                    stop.updated_at = now
                    counts["skipped_burning"] += 1
                    events.append(_event(stop, "skipped", now, stop.skip_reason))
            session.add_all(events)
            await session.commit()
        return counts

    def _judge(self, stop: RouteStopRow, now: datetime, oldest: datetime) -> str | None:
        """Confirm or flag one stop from its bin's latest reading; what changed, or None."""
        assert stop.done_at is not None
        status = self.bin_status(stop.bin_id)
        done_ms = to_ms(stop.done_at)
        fresh = (
            status is not None
            and status.reading_ts_ms > done_ms
            and status.reading_ts_ms > (stop.checked_reading_ms or 0)
        )
        if status is None or not fresh:
            if stop.status == StopStatus.done.value and stop.done_at < oldest:
                hours = self.config.verify_within.total_seconds() / 3600
                stop.status = StopStatus.flagged.value
                stop.flagged_at = now
                stop.flag_reason = f"no fill reading within {hours:g} h after the pickup"
                stop.updated_at = now
                return "flagged"
            return None
        emptied = self.emptied_pct(stop.bin_id)
        stop.checked_reading_ms = status.reading_ts_ms
        stop.fill_after_pct = round(status.fill_pct, 1)
        stop.updated_at = now
        reading_at = from_ms(status.reading_ts_ms)
        if status.fill_pct < emptied:
            stop.status = StopStatus.done.value
            stop.confirmed_at = reading_at
            stop.flagged_at = None
            stop.flag_reason = None
            return "confirmed"
        if stop.status == StopStatus.flagged.value:
            return None  # still not emptied: stays flagged
        stop.status = StopStatus.flagged.value
        stop.flagged_at = now
        stop.flag_reason = (
            f"not emptied: fill_pct {status.fill_pct:.1f} >= {emptied:g} at "
            f"{reading_at.isoformat()}, after the pickup at {stop.done_at.isoformat()}"
        )
        return "flagged"


def _event(stop: RouteStopRow, type_: str, at: datetime, detail: str) -> RouteStopEventRow:
    return RouteStopEventRow(
        stop_id=stop.id,
        route_id=stop.route_id,
        bin_id=stop.bin_id,
        type=type_,
        at=at,
        by=SYSTEM,
        detail=detail[:500],
    )


def _unserved(c: Chosen, volume: float, end: datetime, reason: str) -> UnservedBin:
    return UnservedBin(
        bin_id=c.bin.id,
        why=c.why.value,
        fill_pct=_round(c.bin.status.fill_pct if c.bin.status else None),
        load_l=round(volume * fill_at(c.bin.status, to_ms(end)) / 100, 1),
        reason=reason,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _shift_times(depot: StationPublic) -> tuple[time, time]:
    # A depot always has shift times (StationCreate checks).
    assert depot.shift_start is not None and depot.shift_end is not None
    return depot.shift_start, depot.shift_end


def _route_status(stops: Sequence[RouteStopRow]) -> RouteStatus:
    planned = sum(1 for s in stops if s.status == StopStatus.planned.value)
    if planned == len(stops):
        return RouteStatus.planned
    return RouteStatus.completed if planned == 0 else RouteStatus.in_progress


async def _publics(session: AsyncSession, rows: list[RouteRow]) -> list[RoutePublic]:
    """Routes with their stops (one query for all stops)."""
    if not rows:
        return []
    stops: dict[int, list[RouteStopRow]] = {row.id: [] for row in rows}
    for stop in await session.scalars(
        select(RouteStopRow)
        .where(RouteStopRow.route_id.in_(stops))
        .order_by(RouteStopRow.route_id, RouteStopRow.seq)
    ):
        stops[stop.route_id].append(stop)
    return [_public(row, stops[row.id]) for row in rows]


def _public(row: RouteRow, stops: list[RouteStopRow]) -> RoutePublic:
    public_stops = [StopPublic.model_validate(s) for s in stops]
    geojson = route_geojson(
        (row.depot_lat, row.depot_lon),
        [
            (
                s.lat,
                s.lon,
                {
                    "role": "stop",
                    "seq": s.seq,
                    "bin_id": s.bin_id,
                    "eta": s.eta.isoformat(),
                    "expected_load_l": s.expected_load_l,
                    "status": s.status.value,
                },
            )
            for s in public_stops
        ],
        {"route_id": row.id, "truck": row.truck, "distance_m": row.distance_m},
        {"role": "depot", "depot_id": row.depot_id},
    )
    return RoutePublic(
        id=row.id,
        plan_id=row.plan_id,
        depot_id=row.depot_id,
        truck=row.truck,
        status=_route_status(stops),
        flagged=any(s.status == StopStatus.flagged.value for s in stops),
        start_at=row.start_at,
        end_at=row.end_at,
        distance_m=row.distance_m,
        duration_s=row.duration_s,
        load_l=row.load_l,
        capacity_l=row.capacity_l,
        stops=public_stops,
        geojson=geojson,
    )
