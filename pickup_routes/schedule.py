"""APScheduler jobs: plan each depot's shift a lead time before it starts, and check done
stops against the bins' readings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from apscheduler.triggers.cron import CronTrigger

from dispatch.stations.schemas import WIB, StationKind, StationPublic
from pickup_routes.service import RouteService
from pickup_routes.shifts import planning_time

log = logging.getLogger(__name__)

VERIFY_JOB = "routes.verify"

T = TypeVar("T")


class RouteScheduler:
    """Keeps one planning job per depot in an AsyncIOScheduler (3.x)."""

    def __init__(self, scheduler: Any, service: RouteService, verify_interval_s: float) -> None:
        self.scheduler = scheduler
        self.service = service
        self.verify_interval_s = verify_interval_s
        self._running: set[asyncio.Task[Any]] = set()

    def start(self, stations: Iterable[StationPublic]) -> None:
        """Add the check job and every depot's planning job."""
        self.scheduler.add_job(
            self.verify,
            "interval",
            seconds=self.verify_interval_s,
            id=VERIFY_JOB,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )
        for station in stations:
            self.sync(station)

    def sync(self, station: StationPublic) -> None:
        """(Re)schedule a depot's planning; called for every new or changed station."""
        if station.kind is not StationKind.waste_depot or station.shift_start is None:
            return
        at = planning_time(station.shift_start, self.service.config.plan_lead)
        self.scheduler.add_job(
            self.plan,
            CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=WIB),
            args=[station.id],
            id=f"routes.plan.{station.id}",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            # Late (a busy loop, a suspended laptop) is fine up to the shift start.
            misfire_grace_time=max(60, int(self.service.config.plan_lead.total_seconds())),
        )
        # Once now as well: after a restart inside the lead time or the shift itself, the
        # shift is planned if nobody has yet (plan_shift does nothing otherwise).
        self.scheduler.add_job(
            self.plan, args=[station.id], id=f"routes.catch_up.{station.id}", replace_existing=True
        )

    async def stop(self) -> None:
        """Cancel the jobs still running and wait for them, so that their SQL sessions are
        closed before the engine is disposed (the scheduler's shutdown does neither)."""
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tracked(self, work: Awaitable[T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            return await work
        finally:
            self._running.discard(task)

    async def plan(self, depot_id: str) -> None:
        """The planning job of one depot."""
        try:
            plan = await self._tracked(self.service.plan_shift(depot_id))
        except asyncio.CancelledError:
            # Only stop() cancels; ending quietly keeps apscheduler from logging a failure.
            log.info("route planning for %s stopped: shutting down", depot_id)
            return
        except Exception:
            log.exception("scheduled route planning for %s failed", depot_id)
            return
        if plan is not None:
            log.info("planned shift %s of %s: plan %d", plan.shift_start, depot_id, plan.id)

    async def verify(self) -> None:
        """The periodic check of done stops and burning bins."""
        try:
            counts = await self._tracked(self.service.verify())
        except asyncio.CancelledError:
            return  # stop() at shutdown: the next start checks again
        except Exception:
            log.exception("route stop check failed")
            return
        if any(counts.values()):
            log.info("route stops: %s", counts)
