"""The composition root: builds every stage from Settings and runs them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiosqlite
import numpy as np
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from contract.alerts import HAZE_SLOT
from contract.bins import BinStatus
from contract.ispu import category
from contract.readings import KIND_CODES
from contract.thresholds import RulesConfigError
from contract.timeutil import now_ms
from dashboard_api.access import Authenticator, TokenStore
from dashboard_api.app import create_app
from dashboard_api.console.sessions import SessionStore
from dashboard_api.deps import ApiServices, MapTiles
from dashboard_api.limits import BodyLimits
from devices import profiles
from devices.bin_status import BinStatusStore
from devices.directory import DeviceDirectory, DeviceInfo
from devices.provisioning import BrokerAccounts, DynsecAccounts
from devices.registry import DeviceRegistry
from devices.schemas import DeviceCreate, DevicePublic
from dispatch.broadcast import AlertBroadcaster
from dispatch.egress import EgressPolicy
from dispatch.feed import ChangeFeed
from dispatch.mqtt_out import MqttAlertPublisher
from dispatch.service import AlertService
from dispatch.stations.registry import StationRegistry
from dispatch.stations.schemas import StationKind, StationPublic
from dispatch.store import AlertStore
from dispatch.webhooks import WebhookOutbox
from ingest import metrics
from ingest.batch import ReadingBatch
from ingest.decode import Limits
from ingest.influx import (
    InfluxClient,
    InfluxError,
    InfluxReadings,
    InfluxWriter,
    LineEncoder,
    running_writer,
)
from ingest.partition import Owners, Partition
from ingest.rejected import RejectedStore
from ingest.service import Ingestor, MqttEndpoint, Partitioned
from ingest.spool import Spool
from pickup_routes.geo import haversine_m
from pickup_routes.schedule import RouteScheduler
from pickup_routes.service import RouteConfig, RouteService
from pickup_routes.solver import ProcessSolver
from rules.engine import RuleEngine
from rules.events import AlertEvent
from rules.haze import HazeConfig
from rules.params import DeviceSpec, RulesConfig, load_rules
from sigap import gcpause, looplag, migrations, sqlite_hops
from sigap.settings import RoutesSettings, Settings

log = logging.getLogger(__name__)

_BIN = KIND_CODES["bin"]


def make_engine(url: str) -> AsyncEngine:
    """An async SQLAlchemy engine; SQLite gets WAL and a busy timeout for concurrent use,
    and one trip to aiosqlite's thread per statement (sigap/sqlite_hops.py)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.get_driver_name() == "aiosqlite":

        async def one_trip() -> aiosqlite.Connection:
            return await sqlite_hops.connect(*connect_args[0], **connect_args[1])

        engine = create_async_engine(url, async_creator=one_trip)
        connect_args = engine.dialect.create_connect_args(parsed)
    else:
        engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the SQL schema to the newest migration (alembic upgrade head)."""
    await migrations.upgrade_engine(engine)


class Pipeline:
    """What happens to each batch: rules and alerts first (a fire must not wait for
    InfluxDB), then the batch is queued for InfluxDB.

    Each call returns a future that completes once the batch is durable: its alert events
    committed and its readings in InfluxDB or the disk spool. Ingest acknowledges the
    batch's MQTT messages only then, so a crash before that loses nothing: the broker
    sends them again.
    """

    def __init__(self, engine: RuleEngine, alerts: AlertService, writer: InfluxWriter) -> None:
        self.engine = engine
        self.alerts = alerts
        self.writer = writer
        self._unapplied: list[AlertEvent] = []
        self.last_error: str | None = None  # why alert events could not be committed
        # With several workers: bins evaluated here since their status was last shared.
        self.touched_bins: set[int] | None = None
        # Completes when the events kept after an SQL failure are finally committed.
        self._committed: asyncio.Future[None] | None = None

    async def __call__(self, batch: ReadingBatch) -> asyncio.Future[None]:
        """Evaluate, alert and store one batch; the future says when it is durable."""
        committed = await self.evaluate(batch)
        stored = await self.store(batch)
        if committed is None:
            return stored
        return asyncio.ensure_future(_all_of(stored, committed))

    async def evaluate(self, batch: ReadingBatch) -> asyncio.Future[None] | None:
        """Rules and alert events for a batch; a future when its events wait for SQL."""
        metrics.EVALUATED.inc(len(batch))
        if self.touched_bins is not None:
            self.touched_bins.update(np.unique(batch.device[batch.kind == _BIN]).tolist())
        try:
            events = self.engine.evaluate(batch, now_ms())
        except Exception:
            # A rule bug must not stop readings being stored; the batch is not evaluated.
            log.exception("rule evaluation failed for a batch of %d readings", len(batch))
            events = []
        await self.apply(events)
        if events and batch.arrived_ms and self._committed is None:
            metrics.ALERT_LATENCY.observe(max(0, now_ms() - batch.arrived_ms) / 1000)
        return self._committed

    async def store(self, batch: ReadingBatch) -> asyncio.Future[None]:
        """Queue a batch for InfluxDB; the future completes once it is written or spooled."""
        return await self.writer.submit(batch)

    async def apply(self, events: list[AlertEvent]) -> None:
        """Hand events to dispatch; on failure keep them, in order, for the next call."""
        events = self._unapplied + events
        self._unapplied = []
        if not events:
            return
        started = time.perf_counter()
        try:
            await self.alerts.apply(events)
        except Exception:
            # SQL trouble must not lose alerts or stop readings being stored.
            log.exception("could not store %d alert events; will retry", len(events))
            self._unapplied = events
            self.last_error = f"{len(events)} alert events wait: {sys.exc_info()[1]}"
            if self._committed is None:
                self._committed = asyncio.get_running_loop().create_future()
            return
        took = time.perf_counter() - started
        metrics.ALERT_COMMIT.observe(took)
        if took > 0.25:
            log.warning("committing %d alert events took %.0f ms", len(events), took * 1000)
        if self.last_error is not None:
            log.info("alert events are committed again")
            self.last_error = None
        if self._committed is not None:
            self._committed.set_result(None)
            self._committed = None

    async def check_offline(self) -> None:
        """The periodic device.offline check."""
        await self.apply(self.engine.check_offline(now_ms()))

    async def check_haze(self) -> None:
        """The periodic regional haze check: levels, learning, haze.regional."""
        await self.apply(self.engine.check_haze(now_ms()))

    async def release(self) -> None:
        """Evaluate readings the reorder window has held long enough."""
        await self.apply(self.engine.release(now_ms()))


async def _all_of(first: asyncio.Future[None], second: asyncio.Future[None]) -> None:
    await asyncio.gather(first, second)


@dataclass
class Runtime:
    """The running service's parts (for the API and for tests)."""

    settings: Settings
    sql: AsyncEngine
    directory: DeviceDirectory
    registry: DeviceRegistry
    alerts: AlertService
    rejected: RejectedStore
    influx: InfluxClient
    writer: InfluxWriter
    ingestor: Ingestor
    engine: RuleEngine
    rules: RulesConfig
    stations: StationRegistry | None = None
    routes: RouteService | None = None
    webhooks: WebhookOutbox | None = None
    pipeline: Pipeline | None = None
    auth: Authenticator | None = None
    console: SessionStore | None = None  # the browser console's sign-ins
    accounts: BrokerAccounts | None = None
    owners: Owners | None = None  # with several ingest workers: who owns which device
    # Bins that other workers evaluate, as they last saved them (devices/bin_status.py).
    shared_bins: dict[str, BinStatus] = field(default_factory=dict)

    async def readiness(self) -> dict[str, str | None]:
        """Each dependency: None when it answers, else what is wrong."""
        checks: dict[str, str | None] = {
            "mqtt": None
            if self.ingestor.connected
            else (self.ingestor.last_error or "not connected yet"),
            "sql": None,
            "influxdb": None,
            "spool": self.writer.spool_error,
        }
        try:
            async with self.sql.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            checks["sql"] = f"{type(exc).__name__}: {exc}"[:300]
        # Reads may work while writes fail (a locked SQLite file, a full disk).
        if checks["sql"] is None and self.pipeline is not None:
            checks["sql"] = self.pipeline.last_error and self.pipeline.last_error[:300]
        try:
            await self.influx.ping()
        except InfluxError as exc:
            checks["influxdb"] = str(exc)[:300]
        return checks

    def bin_status(self, device_id: str) -> BinStatus | None:
        """A bin's fill, fill rate and time until full, from the rule engine."""
        info = self.directory.get(device_id)
        if info is None:
            return None
        if self.owners is not None and not self.owners.owns(info):
            return self.shared_bins.get(device_id)  # another worker holds its fill history
        return self.engine.bin_status(info.index)

    def api_services(self) -> ApiServices:
        """The API's view of the runtime."""
        return ApiServices(
            devices=self.registry,
            alerts=self.alerts.store,
            broadcaster=self.alerts.broadcaster,
            readings=InfluxReadings(self.influx, self.settings.influx.measurement),
            rejected=self.rejected,
            readiness=self.readiness,
            last_seen=self.ingestor.seen.get,
            bin_status=self.bin_status,
            check_device=self.check_device,
            stations=self.stations,
            routes=self.routes,
            webhooks=self.webhooks,
            haze=self.engine.haze_regions,
            alert_service=self.alerts,
            cap_sender=self.settings.dispatch.cap_sender,
            auth=self.auth,
            console=self.console,
            accounts=self.accounts,
            map_tiles=(
                MapTiles(self.settings.console_tile_url, self.settings.console_tile_attribution)
                if self.settings.console_tile_url
                else None
            ),
        )

    def emptied_pct(self, device_id: str) -> float:
        """Below this fill (%) a bin counts as emptied (its rule parameters)."""
        info = self.directory.get(device_id)
        if info is None:
            return self.rules.params_for(device_id, "bin").bin_emptied_pct
        return device_spec(self.rules, info).params.bin_emptied_pct

    def check_device(self, device: DeviceCreate) -> None:
        """Raise ValueError if the rules cannot evaluate this device (unknown class...)."""
        try:
            self.rules.params_for(
                device.id, device.kind.value, device.rule_class, device.thresholds
            )
        except RulesConfigError as exc:
            raise ValueError(str(exc)) from None


def device_spec(rules: RulesConfig, info: DeviceInfo) -> DeviceSpec:
    """What the rule engine needs about a registered device."""
    try:
        params = rules.params_for(info.id, info.kind, info.rule_class, info.thresholds)
    except RulesConfigError as exc:
        # Registered before the rules file changed: evaluate with the kind's defaults.
        log.error("device %s: %s; using the %s defaults", info.id, exc, info.kind)
        params = rules.params_for(info.id, info.kind)
    return DeviceSpec(
        index=info.index,
        id=info.id,
        kind=info.kind,
        params=params,
        zone=info.zone,
        lat=info.lat,
        lon=info.lon,
        depth_mm=info.depth_mm,
        reporting_interval_s=info.reporting_interval_s,
        district=info.district,
    )


@asynccontextmanager
async def run(settings: Settings, *, serve_api: bool = True) -> AsyncIterator[Runtime]:
    """Start every stage, downstream first, and stop them in reverse order.

    `serve_api=False` is an ingest worker (`sigap ingest`): ingest, rules and alert events
    only; the process that serves the API (`sigap up`) runs the jobs that must run once
    (escalation, webhook delivery, route planning) and streams every worker's alerts.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sql = make_engine(settings.sql_url)
    await create_schema(sql)
    sessions = async_sessionmaker(sql, expire_on_commit=False)

    rules = load_rules(settings.rules.file)
    # Device profiles (devices/profiles.py): a broken profile file stops the start here,
    # with its name and the problem, rather than mis-reading a device's uplinks later.
    profiles.install(settings.devices_profiles_dir)
    directory = DeviceDirectory()
    registry = DeviceRegistry(sessions, on_change=directory.upsert)
    registered = await registry.all()
    # Sized for the registered fleet (plus room to grow) rather than grown by doubling.
    engine = RuleEngine(
        reorder_window_ms=settings.rules.reorder_window_ms,
        capacity=max(1024, len(registered) + len(registered) // 8),
        haze_config=HazeConfig(
            enabled=settings.rules.haze_enabled,
            check_s=settings.rules.haze_check_s,
            min_detectors=settings.rules.haze_min_detectors,
            typical_infiltration=settings.rules.haze_typical_infiltration,
            regional_alerts=settings.ingest.workers <= 1 or settings.ingest.worker == 0,
        ),
    )
    directory.listen(lambda info: engine.upsert_device(device_spec(rules, info)))
    for device in registered:
        directory.upsert(device)
    # This generator lives as long as the service: without the del, the start-up list of
    # pydantic devices (~3.5 KB each against ~0.7 KB in the directory) would too.
    del registered
    log.info("registry: %d devices", len(directory))
    ing = settings.ingest
    owners: Owners | None = None
    if ing.workers > 1:
        owners = Owners(
            Partition(ing.workers, ing.worker, ing.share_group, ing.partition_cell_deg), directory
        )
        log.info("ingest worker %d of %d, share group %s", ing.worker, ing.workers, ing.share_group)
    # Each worker has its own persistent session (and its forwarded readings in it).
    client_id = settings.mqtt.client_id
    if owners is not None:
        client_id = f"{client_id}-{ing.worker}"

    stations = StationRegistry(sessions)
    nearest = NearestStations(directory, settings.dispatch.proposed_stations)
    known_stations = await stations.find(limit=1_000_000)  # read once: proposals and routes
    nearest.load(known_stations)
    outbox = WebhookOutbox(
        sessions,
        max_attempts=settings.dispatch.webhook_max_attempts,
        policy=EgressPolicy(settings.dispatch.webhook_allow_networks),
    )
    await outbox.load()
    store = AlertStore(sessions, propose=nearest.propose, in_transaction=outbox.enqueue)
    alert_sinks = []
    mqtt_alerts: MqttAlertPublisher | None = None
    if settings.dispatch.mqtt_alerts:
        mqtt_alerts = MqttAlertPublisher(
            settings.mqtt.host,
            settings.mqtt.port,
            username=settings.mqtt.username,
            password=settings.mqtt.password,
            client_id=f"{client_id}-alerts",
        )
        alert_sinks.append(mqtt_alerts)
    alerts = AlertService(
        store, AlertBroadcaster(max_subscribers=settings.api.max_streams), alert_sinks
    )
    raises_haze = engine.haze.config.regional_alerts  # one worker raises haze.regional
    for alert in await store.active():
        info = directory.get(alert.device_id)
        if info is not None and alert.cleared_at is None and (owners is None or owners.owns(info)):
            engine.seed(alert.slot, info.index, alert.kind)  # no second alert after a restart
        elif alert.slot == HAZE_SLOT and alert.cleared_at is None and raises_haze:
            rank = category(int(alert.values.get("ispu", 101))).rank
            engine.seed_haze(alert.device_id, rank)

    rejected = RejectedStore(
        sessions,
        keep=settings.ingest.rejected_keep,
        max_age=timedelta(days=settings.ingest.rejected_keep_days),
    )
    influx_settings = settings.influx
    async with (
        outbox.http_client(timeout_s=10.0) as webhook_http,  # checked, pinned, no redirects
        InfluxClient(
            influx_settings.url,
            influx_settings.db,
            influx_settings.token,
            influx_settings.timeout_s,
        ) as influx,
    ):
        try:
            await influx.ensure_database()
        except InfluxError as exc:
            log.warning("InfluxDB not reachable at start (%s); readings will wait for it", exc)
        writer = InfluxWriter(
            influx,
            LineEncoder(influx_settings.measurement),
            # Workers that share a data dir must not replay one another's spool files.
            spool=Spool(
                settings.data_dir / ("spool" if owners is None else f"spool-{ing.worker}"),
                settings.ingest.spool_max_bytes,
            ),
            max_pending=influx_settings.max_pending_readings,
            max_retry_delay_s=influx_settings.max_retry_delay_s,
        )
        async with running_writer(writer):
            pipeline = Pipeline(engine, alerts, writer)

            async def load_devices(ids: Collection[str]) -> list[DeviceCreate]:
                found: list[DevicePublic] = await registry.get_many(ids)
                return list(found)

            ingestor = Ingestor(
                directory,
                load_devices,
                rejected,
                pipeline,
                limits=Limits(
                    max_payload_bytes=ing.max_payload_bytes,
                    max_future_ms=int(ing.max_future_s * 1000),
                    max_age_ms=int(ing.max_age_s * 1000),
                ),
                batch_size=ing.batch_size,
                window_ms=ing.batch_window_ms,
                load_lorawan=registry.find_by_ns,
                lorawan_dedup_window_ms=int(ing.lorawan_dedup_window_s * 1000),
                last_seen_write_ms=int(ing.last_seen_write_s * 1000),
                partitioned=None
                if owners is None
                else Partitioned(owners, pipeline.evaluate, pipeline.store),
            )
            runtime = Runtime(
                settings,
                sql,
                directory,
                registry,
                alerts,
                rejected,
                influx,
                writer,
                ingestor,
                engine,
                rules,
            )

            planner = ProcessSolver()
            runtime.pipeline = pipeline
            runtime.owners = owners
            runtime.auth = Authenticator(TokenStore(sessions), settings.admin_token)
            runtime.console = SessionStore(
                sessions, idle=timedelta(hours=settings.console_session_idle_h)
            )
            runtime.accounts = broker_accounts(settings)
            if settings.admin_token is None:
                log.warning(
                    "SIGAP_ADMIN_TOKEN is not set: the API accepts only tokens issued before "
                    "(set it to issue the first ones)"
                )
            runtime.stations = stations
            runtime.routes = RouteService(
                sessions,
                stations,
                registry,
                store,
                bin_status=runtime.bin_status,
                emptied_pct=runtime.emptied_pct,
                config=route_config(settings.routes),
                solver=planner,
            )

            scheduler = AsyncIOScheduler()
            scheduler.add_job(
                _persist_last_seen,
                "interval",
                seconds=10,
                args=[runtime],
                max_instances=1,
                coalesce=True,
            )
            scheduler.add_job(
                _prune_rejected,
                "interval",
                seconds=60,
                args=[runtime],
                max_instances=1,
                coalesce=True,
            )
            scheduler.add_job(
                pipeline.check_offline,
                "interval",
                seconds=settings.rules.offline_check_s,
                max_instances=1,
                coalesce=True,
            )
            if settings.rules.haze_enabled:
                scheduler.add_job(
                    pipeline.check_haze,
                    "interval",
                    seconds=settings.rules.haze_check_s,
                    max_instances=1,
                    coalesce=True,
                )
            if settings.rules.reorder_window_ms:
                scheduler.add_job(
                    pipeline.release,
                    "interval",
                    seconds=max(settings.rules.reorder_window_ms / 2000, 0.05),
                    max_instances=1,
                    coalesce=True,
                )
            if owners is not None:
                # The API that changes devices, depots and webhooks may run elsewhere.
                bin_store = BinStatusStore(sessions)
                follower = SqlFollower(
                    registry,
                    outbox,
                    stations,
                    nearest,
                    bin_store,
                    runtime.shared_bins,
                    api=serve_api,
                )
                pipeline.touched_bins = set()
                for job in (follower.refresh, partial(_share_bin_status, runtime, bin_store)):
                    scheduler.add_job(
                        job,
                        "interval",
                        seconds=settings.ingest.follow_registry_s,
                        max_instances=1,
                        coalesce=True,
                    )
            route_jobs: RouteScheduler | None = None
            if settings.routes.schedule and serve_api:
                route_jobs = RouteScheduler(
                    scheduler, runtime.routes, settings.routes.verify_interval_s
                )
                route_jobs.start(known_stations)
                stations.on_change = _both(nearest.add, route_jobs.sync)  # new depots: a job
                if any(s.kind is StationKind.waste_depot for s in known_stations):
                    planner.warm()
            else:
                stations.on_change = nearest.add
            background: list[asyncio.Task[None]] = []
            if serve_api:  # jobs that must run in one process only
                scheduler.add_job(
                    alerts.escalate,
                    "interval",
                    seconds=settings.dispatch.escalation_check_s,
                    args=[settings.dispatch.escalate_after_s],
                    max_instances=1,
                    coalesce=True,
                )
                background.append(
                    asyncio.create_task(
                        outbox.run(webhook_http, poll_s=settings.dispatch.webhook_poll_s),
                        name="webhooks",
                    )
                )
            if serve_api and owners is not None:
                # Other workers commit alerts too: stream theirs from the change log.
                feed = ChangeFeed(
                    store.changes_after,
                    alerts.broadcaster.publish,
                    alerts.broadcaster.published,
                    poll_s=settings.dispatch.feed_poll_s,
                )
                feed.start_at(await store.latest_event_id())
                background.append(asyncio.create_task(feed.run(), name="alert-feed"))
            scheduler.start()
            runtime.webhooks = outbox
            if mqtt_alerts is not None:
                background.append(asyncio.create_task(mqtt_alerts.run(), name="mqtt-alerts"))

            topics = (ing.device_topics, ing.gateway_topics, *ing.lorawan_topic_list)
            if owners is not None:
                part = owners.partition
                topics = (*(part.shared(t) for t in topics), part.topic)
            endpoint = MqttEndpoint(
                host=settings.mqtt.host,
                port=settings.mqtt.port,
                topics=topics,
                client_id=client_id,
                username=settings.mqtt.username,
                password=settings.mqtt.password,
                qos=settings.mqtt.qos,
            )
            consumer = asyncio.create_task(ingestor.run(endpoint), name="ingest")
            background.append(asyncio.create_task(looplag.watch(), name="loop-lag"))
            gcpause.watch()
            # The registry and everything built at start live as long as the process: out
            # of the collector's sight, full collections stay short (sigap/gcpause.py).
            log.info("%d start-up objects exempt from garbage collection", gcpause.freeze())
            try:
                yield runtime
            finally:
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                scheduler.shutdown(wait=False)
                if route_jobs is not None:
                    await route_jobs.stop()  # before the SQL engine goes
                planner.close()
                alerts.broadcaster.close_all()
                if runtime.accounts is not None:
                    await runtime.accounts.aclose()
                try:
                    await ingestor.flush()  # readings already received go out before we stop
                except Exception:
                    log.exception("final flush failed")
                await _persist_last_seen(runtime, everything=True)
    await sql.dispose()


def _both(
    first: Callable[[StationPublic], object], second: Callable[[StationPublic], object]
) -> Callable[[StationPublic], None]:
    def call(station: StationPublic) -> None:
        first(station)
        second(station)

    return call


class SqlFollower:
    """What an ingest worker re-reads from SQL because another process changes it: devices
    (new, moved, retired); in the API process, the bins other workers evaluate; elsewhere,
    webhook subscriptions and fire stations."""

    # Re-read changes this far back too: the clocks of the processes that stamp them differ.
    SKEW = timedelta(seconds=30)

    def __init__(
        self,
        registry: DeviceRegistry,
        outbox: WebhookOutbox,
        stations: StationRegistry,
        nearest: NearestStations,
        bins: BinStatusStore,
        shared_bins: dict[str, BinStatus],
        *,
        api: bool,
    ) -> None:
        self._registry = registry
        self._bins = bins
        self._shared_bins = shared_bins
        self._outbox = outbox
        self._stations = stations
        self._nearest = nearest
        self._api = api
        self._since = datetime.now(UTC)

    async def refresh(self) -> None:
        """One round: changed devices into the directory, subscribers and stations."""
        started = datetime.now(UTC)
        try:
            changed = await self._registry.changed_since(self._since - self.SKEW)
            for device in changed:
                self._registry.notify(device)
            if self._api:  # bins that other workers evaluate, for /bins and routes
                self._shared_bins.update(await self._bins.changed_since(self._since - self.SKEW))
            else:
                await self._outbox.load()
                self._nearest.load(await self._stations.find(limit=1_000_000))
        except Exception as exc:
            log.warning("could not re-read the registry: %s", exc)
            return
        self._since = started


class NearestStations:
    """Fire stations in memory, to propose the nearest ones for a new fire alert."""

    def __init__(self, directory: DeviceDirectory, count: int) -> None:
        self._directory = directory
        self._count = count
        self._stations: dict[str, tuple[float, float]] = {}

    def load(self, stations: list[StationPublic]) -> None:
        """Replace the known stations."""
        self._stations = {}
        for station in stations:
            self.add(station)

    def add(self, station: StationPublic) -> None:
        """Learn a new or changed station (fire stations only)."""
        if station.kind is StationKind.fire_station:
            self._stations[station.id] = (station.lat, station.lon)

    def propose(self, device_id: str) -> list[str]:
        """The nearest fire stations to a device, nearest first."""
        info = self._directory.get(device_id)
        if info is None or not self._stations:
            return []
        ranked = sorted(
            self._stations.items(), key=lambda item: haversine_m(info.lat, info.lon, *item[1])
        )
        return [station_id for station_id, _ in ranked[: self._count]]


def route_config(settings: RoutesSettings) -> RouteConfig:
    """The route planner's defaults from SIGAP_ROUTES_*."""
    return RouteConfig(
        bin_volume_l=settings.bin_volume_l,
        detour_factor=settings.detour_factor,
        speed_kmh=settings.speed_kmh,
        service_s=settings.service_s,
        max_time_limit_s=settings.time_limit_s,
        plan_lead=timedelta(minutes=settings.plan_lead_min),
        verify_within=timedelta(hours=settings.verify_within_h),
    )


async def _share_bin_status(runtime: Runtime, store: BinStatusStore) -> None:
    """Save the status of the bins this worker evaluated since the last round."""
    pipeline = runtime.pipeline
    if pipeline is None or not pipeline.touched_bins:
        return
    touched, pipeline.touched_bins = pipeline.touched_bins, set()
    ids = runtime.engine.device_ids
    statuses = {
        ids[index]: status
        for index in touched
        if (status := runtime.engine.bin_status(index)) is not None
    }
    try:
        await store.save(statuses, datetime.now(UTC))
    except Exception as exc:
        log.warning("could not save %d bins' status: %s", len(statuses), exc)
        pipeline.touched_bins |= touched


async def _persist_last_seen(runtime: Runtime, *, everything: bool = False) -> None:
    seen = runtime.ingestor.seen
    due, index, times = seen.due(everything=everything)
    try:
        await runtime.registry.mark_seen(due)
    except Exception as exc:
        log.warning("could not record last-seen times: %s", exc)  # due again next time
        return
    seen.written(index, times)


async def _prune_rejected(runtime: Runtime) -> None:
    try:
        dropped = await runtime.rejected.prune()
    except Exception as exc:
        log.warning("could not prune the rejected store: %s", exc)
        return
    if dropped:
        log.info("rejected store: dropped the %d oldest entries", dropped)


def broker_accounts(settings: Settings) -> DynsecAccounts | None:
    """The broker's device and gateway logins, when Sigap holds the dynsec admin account.

    It connects on first use (and again after a drop), so a broker that is down at start
    costs the credentials endpoints a 503, not the service its start.
    """
    mqtt = settings.mqtt
    if not (mqtt.admin_username and mqtt.admin_password):
        log.info("no SIGAP_MQTT_ADMIN_USERNAME: device MQTT credentials are not managed here")
        return None
    return DynsecAccounts(
        mqtt.host,
        mqtt.port,
        mqtt.admin_username,
        mqtt.admin_password,
        service_username=mqtt.username,
    )


def build_app(settings: Settings, *, serve_api: bool = True) -> FastAPI:
    """The app whose lifespan runs the whole service (or, serve_api=False, a worker)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run(settings, serve_api=serve_api) as runtime:
            app.state.runtime = runtime
            app.state.services = runtime.api_services()
            yield

    limits = BodyLimits(default=settings.api.max_body_bytes, imports=settings.api.max_import_bytes)
    return create_app(lifespan, api=serve_api, limits=limits)
