"""The ingest stage: MQTT in, decoded and validated readings out, as numpy micro-batches."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import Any, ClassVar

import aiomqtt
import numpy as np
import numpy.typing as npt
import orjson
import paho.mqtt.client as mqtt

from contract.readings import KIND_CODES, Q_INDEX, QUANTITIES
from contract.timeutil import from_ms, now_ms
from contract.topics import DEVICE_UP, GATEWAY_UP, LORAWAN_UP
from devices.directory import NO_GATEWAY_CHECK, DeviceDirectory, DeviceInfo
from devices.schemas import DeviceCreate
from ingest import decode, lorawan, metrics, partition
from ingest.acks import AckTracker, Receipt
from ingest.batch import ReadingBatch
from ingest.bufsock import buffer_reads
from ingest.decode import DecodedReading, DecodeError, GatewayRows, Limits, Reason
from ingest.last_seen import LastSeen
from ingest.lean_publish import Incoming, read_publishes_lean
from ingest.partition import Owners
from ingest.rejected import Rejected, RejectedStore

log = logging.getLogger(__name__)

# A batch handler returns None when the batch is durable on return, or a future that
# completes once it is (evaluated, its alert events committed, its readings stored or
# spooled); only then are the batch's QoS 1 messages acknowledged to the broker.
BatchHandler = Callable[[ReadingBatch], Awaitable["asyncio.Future[None] | None"]]
DeviceLoader = Callable[[Collection[str]], Awaitable[list[DeviceCreate]]]
# (network server, its ids for the device, DevEUI first) -> the registered device, if any.
LorawanLoader = Callable[[str, tuple[str, ...]], Awaitable[DeviceCreate | None]]

# Bound once: .labels() looks the child up on every call, and this runs per message.
# In the order of Ingestor._received.
_MESSAGES = tuple(metrics.MESSAGES.labels(k) for k in ("devices", "gateways", "lorawan", "unknown"))

_NQ = len(QUANTITIES)
_FILL = Q_INDEX["fill_pct"]
_DISTANCE = Q_INDEX["distance_mm"]
_BIN = KIND_CODES["bin"]

# How long an id that the registry does not know stays known-unknown, so that a flood of
# readings from one unregistered device does not become a flood of SQL look-ups.
_UNKNOWN_TTL_MS = 2000


# Not frozen: one is made per reading, and a frozen dataclass sets each field through
# object.__setattr__ (1.7 against 0.4 us to make one here). Nothing changes one after.
@dataclass(slots=True)
class _Staged:
    topic: str
    gateway_id: str | None
    reading: DecodedReading  # for a LoRaWAN uplink, a placeholder until its device is known
    raw: bytes | Any  # the payload (device topic) or the reading object (gateway batch)
    receipt: Receipt | None  # the QoS 1 message it came in, acknowledged once it is durable
    arrived_ms: int
    uplink: lorawan.Uplink | None = None  # a LoRaWAN uplink, mapped once its device is known

    def rejected(self, error: DecodeError, at_ms: int, device_id: str | None) -> Rejected:
        """This reading as a rejection (counted in the metrics)."""
        raw = self.raw if isinstance(self.raw, bytes) else _dump(self.raw)
        return _rejected(self.topic, raw, at_ms, error, device_id)


@dataclass(slots=True)
class _Block:
    """A gateway batch whose readings all took the fast path: columns, one receipt part."""

    topic: str
    gateway_id: str
    rows: GatewayRows
    payload: bytes  # for a reading the registry refuses: parsed again to keep it as sent
    receipt: Receipt | None
    arrived_ms: int
    _items: list[Any] | None = None  # the payload's readings, once one is refused

    def rejected(self, row: int, error: DecodeError, at_ms: int) -> Rejected:
        """One of its readings as a rejection, stored as the careful path would store it."""
        if self._items is None:
            self._items = orjson.loads(self.payload)["readings"]
        item = self._items[row]
        return _rejected(self.topic, _dump(item), at_ms, error, self.rows.device_ids[row])


@dataclass(frozen=True, slots=True)
class Partitioned:
    """How a worker among several hands on its batches (see ingest/partition.py)."""

    owners: Owners
    evaluate: BatchHandler  # the rows this worker owns: rules and alert events
    store: BatchHandler  # every row it received: InfluxDB


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where and how ingest subscribes."""

    host: str
    port: int
    topics: tuple[str, ...] = (DEVICE_UP, GATEWAY_UP, *LORAWAN_UP)
    client_id: str = "sigap-ingest"
    username: str | None = None
    password: str | None = None
    qos: int = 1
    # Messages received but not yet decoded. QoS 1 messages are bounded by the broker's
    # in-flight window anyway (they wait for our acknowledgement); this bounds a QoS 0
    # flood. Keep it well above the broker's max_inflight_messages: a QoS 1 message
    # dropped here would hold an in-flight slot until the next reconnect.
    max_queued_messages: int = 200_000


class Ingestor:
    """Decodes messages as they arrive and flushes them as ReadingBatches.

    A batch is flushed when it reaches `batch_size` readings or when its oldest reading has
    waited `window_ms`. Nothing is dropped: every message ends up in a batch or in the
    rejected store, with its reason.
    """

    def __init__(
        self,
        directory: DeviceDirectory,
        load_devices: DeviceLoader,
        rejected: RejectedStore,
        on_batch: BatchHandler,
        *,
        limits: Limits | None = None,
        batch_size: int = 5000,
        window_ms: int = 100,
        clock: Callable[[], int] = now_ms,
        load_lorawan: LorawanLoader | None = None,
        lorawan_dedup_window_ms: int = 15 * 60_000,
        partitioned: Partitioned | None = None,
        last_seen_write_ms: int = 300_000,
    ) -> None:
        self.directory = directory
        self._load_devices = load_devices
        self._rejected_store = rejected
        self._on_batch = on_batch
        self.limits = limits or Limits()
        self.batch_size = batch_size
        self.window_ms = window_ms
        self._clock = clock
        self._staged: list[_Staged | _Block] = []
        self._rows = 0  # readings in _staged (a _Block holds many)
        self._rejects: list[tuple[Rejected, Receipt | None]] = []
        self._oldest_ms: int | None = None
        self._unknown_until: dict[str, int] = {}
        self._load_lorawan = load_lorawan
        self._queue_depth: Callable[[], int] = lambda: 0  # messages received, not decoded
        # A LoRaWAN uplink heard by several gateways (or redelivered) is stored once.
        self._uplinks_seen = lorawan.Deduplicator(lorawan_dedup_window_ms)
        self._flush_lock = asyncio.Lock()
        self.seen = LastSeen(directory, last_seen_write_ms)  # each device's latest arrival
        self.subscribed = asyncio.Event()  # set while subscribed to the broker
        self.last_error: str | None = None
        self._partitioned = partitioned
        # Batches other workers forwarded to us (their payloads), evaluated at the next flush.
        self._inbox: list[tuple[bytes, Receipt | None]] = []
        self._client: aiomqtt.Client | None = None  # while connected: forwards go out on it
        self._forwarding: set[asyncio.Future[None]] = set()  # publishes awaiting their PUBACK
        self._warned: set[int] = set()  # workers whose worker count differs from ours
        # Messages received per topic kind since the last fold into sigap_ingest_messages_total
        # (devices, gateways, lorawan, unknown): a Prometheus inc costs 0.7 us, as much as
        # 2 % of a single reading's whole path; an int add and a fold every timer tick do not.
        self._received = [0, 0, 0, 0]

    @property
    def connected(self) -> bool:
        """True while subscribed to the broker."""
        return self.subscribed.is_set()

    # -- decoding (synchronous, per message) ------------------------------------------

    def handle(self, topic: str, payload: bytes, receipt: Receipt | None = None) -> None:
        """Decode one MQTT message into staged readings or rejections."""
        try:
            self._handle(topic, payload, receipt)
        finally:
            if receipt is not None:
                receipt.seal()

    def _handle(self, topic: str, payload: bytes, receipt: Receipt | None) -> None:
        now = self._clock()
        if self._partitioned is not None and topic == self._partitioned.owners.partition.topic:
            if receipt is not None:
                receipt.add_part()
            self._inbox.append((payload, receipt))
            return
        parts = topic.split("/")
        # LoRaWAN first: a TTS topic (v3/app@tenant/devices/dev/up) would otherwise pass
        # for a Sigap device topic.
        if lorawan.network_server_of(parts) is not None:
            self._handle_uplink(topic, payload, receipt, now)
            return
        if len(parts) >= 3 and parts[-1] == "up" and parts[-3] in ("devices", "gateways"):
            source, ident = parts[-3], parts[-2]
        else:
            self._received[3] += 1
            self._reject(
                topic, payload, now, DecodeError(Reason.BAD_TOPIC, "unexpected topic"), receipt
            )
            return
        if source == "devices":
            self._received[0] += 1
            try:
                reading = decode.device_payload(ident, payload, now, self.limits)
            except DecodeError as exc:
                self._reject(topic, payload, now, exc, receipt, ident)
                return
            self._stage(_Staged(topic, None, reading, payload, receipt, now), now)
            return
        self._received[1] += 1
        rows = decode.gateway_rows(payload, now, self.limits)
        if rows is not None:
            # One receipt part for the block; _build adds one per reading it refuses.
            self._stage(_Block(topic, ident, rows, payload, receipt, now), now, len(rows))
            return
        try:
            items = decode.gateway_items(payload, self.limits)
        except DecodeError as exc:
            self._reject(topic, payload, now, exc, receipt)
            return
        for item in items:
            try:
                reading = decode.gateway_item(item, now, self.limits)
            except DecodeError as exc:
                device = item.get("device_id") if isinstance(item, dict) else None
                self._reject(
                    topic,
                    _dump(item),
                    now,
                    exc,
                    receipt,
                    device if isinstance(device, str) else None,
                )
                continue
            self._stage(_Staged(topic, ident, reading, item, receipt, now), now)

    def _handle_uplink(self, topic: str, payload: bytes, receipt: Receipt | None, now: int) -> None:
        self._received[2] += 1
        try:
            uplink = lorawan.decode_uplink(topic, payload, now, self.limits)
        except lorawan.UplinkError as exc:
            known = (
                self.directory.find_lorawan(exc.network_server, exc.device_keys)
                if exc.network_server
                else None
            )
            self._reject(topic, payload, now, exc, receipt, known.id if known else None)
            return
        if self._uplinks_seen.seen(uplink.dedup_key, now):
            metrics.LORAWAN_DUPLICATES.inc()
            return
        placeholder = DecodedReading("", uplink.event_ms, -1, (), uplink.time_from_arrival)
        self._stage(_Staged(topic, None, placeholder, payload, receipt, now, uplink), now)

    def _stage(self, staged: _Staged | _Block, now: int, rows: int = 1) -> None:
        if self._oldest_ms is None:
            self._oldest_ms = now
        if staged.receipt is not None:
            staged.receipt.add_part()
        self._staged.append(staged)
        self._rows += rows

    def _reject(
        self,
        topic: str,
        raw: bytes,
        now: int,
        error: DecodeError,
        receipt: Receipt | None,
        device_id: str | None = None,
    ) -> None:
        if receipt is not None:
            receipt.add_part()
        self._rejects.append((_rejected(topic, raw, now, error, device_id), receipt))
        if self._oldest_ms is None:
            self._oldest_ms = now

    @property
    def staged(self) -> int:
        """Readings, rejections and forwarded batches waiting for the next flush."""
        return self._rows + len(self._rejects) + len(self._inbox)

    def due(self) -> bool:
        """True when the batch is full or its oldest entry has waited a whole window."""
        # A forwarded batch was batched by its sender already: it goes on at once.
        if self._rows >= self.batch_size or self._inbox:
            return True
        return self._oldest_ms is not None and self._clock() - self._oldest_ms >= self.window_ms

    # -- flushing (async, per batch) --------------------------------------------------

    def fold_received(self) -> None:
        """Add the messages received since the last call to sigap_ingest_messages_total."""
        received = self._received
        if any(received):
            for counter, count in zip(_MESSAGES, received, strict=True):
                if count:
                    counter.inc(count)
            self._received = [0, 0, 0, 0]

    async def flush(self) -> int:
        """Validate staged readings against the registry and hand them on; returns readings."""
        self.fold_received()
        async with self._flush_lock:
            started = time.perf_counter()
            staged, self._staged = self._staged, []
            staged_rows, self._rows = self._rows, 0
            rejects, self._rejects = self._rejects, []
            inbox, self._inbox = self._inbox, []
            self._oldest_ms = None
            if staged:
                metrics.LAG.observe(max(0, self._clock() - staged[0].arrived_ms) / 1000)
            try:
                built = await self._build(staged, rejects) if staged else None
            except Exception:
                # The registry could not be asked (SQL down): keep everything for next time.
                self._staged[:0] = staged
                self._rows += staged_rows
                self._rejects[:0] = rejects
                self._inbox[:0] = inbox
                self._oldest_ms = self._oldest_ms or self._clock()
                raise
            metrics.STAGED.set(self._rows)
            metrics.QUEUED.set(self._queue_depth())
            # Rejections first: once a batch's readings are stored, the rejections that
            # arrived with them are visible too.
            built_at = time.perf_counter()
            if rejects:
                await self._store_rejects(rejects)
            count = 0
            if built is not None:
                batch, receipts = built
                metrics.READINGS.inc(len(batch))
                metrics.BATCH_SIZE.observe(len(batch))
                _when_all(await self._hand_on(batch), receipts)
                count = len(batch)
            handed_at = time.perf_counter()
            if inbox:
                unreadable: list[tuple[Rejected, Receipt | None]] = []
                try:
                    await self._evaluate_forwarded(inbox, unreadable)
                finally:
                    if unreadable:
                        await self._store_rejects(unreadable)
            done_at = time.perf_counter()
            if done_at - started > 0.25:
                # Every alert waits behind a slow flush: say where the time went.
                log.warning(
                    "slow flush: %.0f ms (registry %.0f, rejections and hand-on %.0f, "
                    "forwarded %.0f) for %d readings",
                    (done_at - started) * 1000,
                    (built_at - started) * 1000,
                    (handed_at - built_at) * 1000,
                    (done_at - handed_at) * 1000,
                    count,
                )
            return count

    async def _hand_on(self, batch: ReadingBatch) -> list[asyncio.Future[None] | None]:
        """Rules and storage for a batch; what must complete before it is acknowledged."""
        split = self._partitioned
        if split is None:
            return [await self._on_batch(batch)]
        local, others = split.owners.split(batch)
        # Rules first (a fire must not wait for InfluxDB), here or at the owner's.
        waits = [await split.evaluate(local)] if local is not None else []
        for owner, rows in others.items():
            waits.append(self._forward(owner, rows))
        waits.append(await split.store(batch))
        return waits

    def _forward(self, owner: int, rows: ReadingBatch) -> asyncio.Future[None]:
        """Send readings to their owner worker; the future completes on the broker's PUBACK."""
        assert self._partitioned is not None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        client = self._client
        if client is None:
            # Between connections: the messages these rows came in are not acknowledged
            # and will come again, so they are forwarded then.
            return done
        payload = partition.encode(rows, self._partitioned.owners.partition)
        metrics.FORWARDED.labels(str(owner)).inc(len(rows))

        async def publish() -> None:
            try:
                await client.publish(partition.topic_of(owner), payload, qos=1, timeout=30)
            except Exception as exc:
                # Without the PUBACK the original messages must not be acknowledged: drop
                # the connection, and the broker sends them again (to whichever worker).
                log.error("could not forward %d readings to worker %d: %s", len(rows), owner, exc)
                with contextlib.suppress(Exception):
                    client._client.disconnect()
                return
            done.set_result(None)

        task = asyncio.ensure_future(publish())
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)
        return done

    async def _evaluate_forwarded(
        self,
        inbox: list[tuple[bytes, Receipt | None]],
        rejects: list[tuple[Rejected, Receipt | None]],
    ) -> None:
        """Rules for the readings other workers forwarded to us (they stored them already)."""
        for position, (payload, receipt) in enumerate(inbox):
            try:
                await self._evaluate_one(payload, receipt, rejects)
            except Exception:
                # The registry or the alert store is down: keep this batch and the rest
                # for the next flush (acknowledging in order, a lost one would stall all).
                self._inbox[:0] = inbox[position:]
                raise

    async def _evaluate_one(
        self,
        payload: bytes,
        receipt: Receipt | None,
        rejects: list[tuple[Rejected, Receipt | None]],
    ) -> None:
        assert self._partitioned is not None
        own = self._partitioned.owners.partition
        try:
            forwarded = partition.decode(payload)
        except partition.ForwardError as exc:
            error = DecodeError(Reason.BAD_FORWARD, str(exc))
            rejects.append((_rejected(own.topic, payload, self._clock(), error, None), receipt))
            return
        if forwarded.workers != own.workers and forwarded.sender not in self._warned:
            self._warned.add(forwarded.sender)
            log.error(
                "worker %d counts %d workers, this one %d: set SIGAP_INGEST_WORKERS alike "
                "everywhere, or devices' rule state is split between workers",
                forwarded.sender,
                forwarded.workers,
                own.workers,
            )
        batch = await self._forwarded_batch(forwarded)
        metrics.FORWARDED_IN.inc(len(batch))
        _when_all([await self._partitioned.evaluate(batch)] if len(batch) else [], [receipt])

    async def _forwarded_batch(self, forwarded: partition.Forwarded) -> ReadingBatch:
        directory = self.directory
        missing = {i for i in forwarded.device_ids if directory.get(i) is None}
        if missing:
            await self._resolve(missing)
        infos = [directory.get(i) for i in forwarded.device_ids]
        rows = np.fromiter((k for k, info in enumerate(infos) if info is not None), np.intp)
        if len(rows) < len(infos):
            # Accepted by the sender, deleted from the registry since: stored, not evaluated.
            log.warning("%d forwarded readings of deleted devices", len(infos) - len(rows))
        known = [info for info in infos if info is not None]
        return ReadingBatch(
            np.fromiter((info.index for info in known), np.int32, len(known)),
            np.fromiter((info.kind_code for info in known), np.uint8, len(known)),
            forwarded.ts_ms[rows],
            forwarded.seq[rows],
            forwarded.values[:, rows],
            directory.ids,
            arrived_ms=forwarded.arrived_ms,
            faults=partition.faults_of(forwarded.faults, rows),
        )

    async def _store_rejects(self, rejects: list[tuple[Rejected, Receipt | None]]) -> None:
        try:
            await self._rejected_store.add_many([rejected for rejected, _ in rejects])
        except Exception as exc:  # the SQL store is down or locked: keep them for next time
            log.error("could not store %d rejected messages, will retry: %s", len(rejects), exc)
            self._rejects[:0] = rejects
            return
        _all_done([receipt for _, receipt in rejects])

    async def _resolve(self, ids: set[str]) -> None:
        now = self._clock()
        wanted = {i for i in ids if self._unknown_until.get(i, 0) <= now}
        if not wanted:
            return
        for device in await self._load_devices(wanted):
            self.directory.upsert(device)
            wanted.discard(device.id)
        for device_id in wanted:
            self._unknown_until[device_id] = now + _UNKNOWN_TTL_MS
        if len(self._unknown_until) > 100_000:  # do not let a flood of made-up ids grow this
            self._unknown_until = {k: v for k, v in self._unknown_until.items() if v > now}

    async def _map_uplinks(
        self, staged: list[_Staged | _Block], rejects: list[tuple[Rejected, Receipt | None]]
    ) -> list[_Staged | _Block]:
        """Find each uplink's device (directory, then registry) and map its payload."""
        out: list[_Staged | _Block] = []
        for item in staged:
            uplink = item.uplink if type(item) is _Staged else None
            if uplink is None:
                out.append(item)
                continue
            assert type(item) is _Staged
            keys = uplink.device_keys
            info = self.directory.find_lorawan(uplink.network_server, keys)
            if info is None and self._load_lorawan is not None:
                device = await self._load_lorawan(uplink.network_server, keys)
                info = self.directory.upsert(device) if device is not None else None
            try:
                if info is None:
                    raise DecodeError(
                        Reason.UNKNOWN_DEVICE,
                        f"no device registered with {uplink.network_server} id "
                        f"{' or '.join(repr(k) for k in keys)}",
                    )
                reading = lorawan.to_reading(
                    uplink, info.id, info.field_map, self._clock(), self.limits, info.status_map
                )
            except DecodeError as exc:
                rejected = item.rejected(exc, self._clock(), info.id if info else None)
                rejects.append((rejected, item.receipt))
                continue
            out.append(dataclasses.replace(item, reading=reading, uplink=None))
        return out

    async def _build(
        self, staged: list[_Staged | _Block], rejects: list[tuple[Rejected, Receipt | None]]
    ) -> tuple[ReadingBatch, list[Receipt | None]] | None:
        directory = self.directory
        if any(type(s) is _Staged and s.uplink is not None for s in staged):
            staged = await self._map_uplinks(staged, rejects)
            if not staged:
                return None  # every uplink was refused (each part went with its rejection)
        table = directory.table
        columns = _Columns(staged)
        ids = columns.device_ids
        device = np.fromiter(map(table.index.get, ids, repeat(-1)), np.int64, len(ids))
        if (device < 0).any():
            await self._resolve({i for i, d in zip(ids, device.tolist(), strict=True) if d < 0})
            device = np.fromiter(map(table.index.get, ids, repeat(-1)), np.int64, len(ids))
        # No await below: a receipt part added here is never added twice by a retried flush.
        at = np.maximum(device, 0)  # index 0 stands in for an unknown id (refused anyway)
        gateway = columns.gateway_codes(table.gateway_code)  # after _resolve: new gateways
        refused_rows = (
            (device < 0)
            | table.retired[at]
            | ((gateway != NO_GATEWAY_CHECK) & (table.gateway[at] != gateway))
        )
        # What must be durable before each message is acknowledged: a part per block, and
        # per reading taken alone (a refused one's part goes with its rejection).
        if refused_rows.any():
            mended: dict[int, int] = {}
            candidates = np.flatnonzero(refused_rows).tolist()
            refused = self._refuse(staged, columns, candidates, rejects, mended)
            for row, index in mended.items():
                device[row] = index
            keep = np.ones(len(device), bool)
            keep[refused] = False
            columns.take(keep)
            device = device[keep]
            out = set(refused)
            receipts = [e.receipt for e in staged if type(e) is _Block]
            receipts += [e.receipt for row, e in columns.singles if row not in out]
            if not len(device):
                _all_done(receipts)  # blocks' own parts: their refused readings hold theirs
                return None
        else:
            receipts = [e.receipt for e in staged]

        values = columns.values.T.copy()  # one row per quantity, as ReadingBatch keeps them
        kind = table.kind[device]
        with_offsets = np.flatnonzero(table.has_offsets[device]).tolist()
        if with_offsets:
            offsets: list[dict[str, float] | None] = [None] * len(device)
            for row in with_offsets:
                info = directory.get(directory.ids[device[row]])
                offsets[row] = info.sensor_offsets if info is not None else None
            _apply_offsets(values, offsets)
        _fill_from_distance(values, kind, table.depth_mm[device])
        indices = device.astype(np.int32)

        self.seen.record(indices, self._clock())
        batch = ReadingBatch(
            indices,
            kind,
            columns.ts_ms,
            columns.seq,
            values,
            directory.ids,
            arrived_ms=staged[0].arrived_ms,
            faults=columns.faults,
        )
        return batch, receipts

    def _refuse(
        self,
        staged: list[_Staged | _Block],
        columns: _Columns,
        candidates: list[int],
        rejects: list[tuple[Rejected, Receipt | None]],
        mended: dict[int, int],
    ) -> list[int]:
        """Reject the readings the registry refuses (unknown, retired, wrong gateway), of
        the rows the device table pointed at; returns the rows refused, and puts in
        `mended` the device index of any row the table refused wrongly."""
        starts = np.cumsum([0, *columns.sizes])  # each entry's first row
        now = self._clock()
        refused: list[int] = []
        for row in candidates:
            position = int(np.searchsorted(starts, row, side="right")) - 1
            entry = staged[position]
            device_id = columns.device_ids[row]
            error = _registry_error(device_id, entry.gateway_id, self.directory.get(device_id))
            if error is None:
                # The table and the registry disagree (a bug): the registry decides. The
                # table is mended and the reading kept, rather than ingest stopping on it.
                info = self.directory.get(device_id)
                assert info is not None  # no error: the registry knows the device
                log.error("device table out of step for %r; mended", device_id)
                self.directory.table.set(info)
                mended[row] = info.index
                continue
            refused.append(row)
            if isinstance(entry, _Block):
                rejected = entry.rejected(row - int(starts[position]), error, now)
                if entry.receipt is not None:
                    entry.receipt.add_part()
            else:
                rejected = entry.rejected(error, now, device_id)
            rejects.append((rejected, entry.receipt))
        return refused

    # -- MQTT loop ----------------------------------------------------------------------

    async def run(self, endpoint: MqttEndpoint) -> None:
        """Subscribe and ingest forever, reconnecting with backoff; cancel to stop."""
        ticker = asyncio.create_task(self._tick(), name="ingest-flush-timer")
        delay = 0.5
        try:
            while True:
                try:
                    await self._session(endpoint)
                except aiomqtt.MqttError as exc:
                    self.subscribed.clear()
                    metrics.MQTT_CONNECTED.set(0)
                    if self.last_error != str(exc):
                        log.warning(
                            "MQTT connection to %s:%d lost: %s; reconnecting",
                            endpoint.host,
                            endpoint.port,
                            exc,
                        )
                    self.last_error = str(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                delay = 0.5
        finally:
            self.subscribed.clear()
            metrics.MQTT_CONNECTED.set(0)
            ticker.cancel()

    async def _session(self, endpoint: MqttEndpoint) -> None:
        _CountingQueue.last_made = None
        client = aiomqtt.Client(
            endpoint.host,
            endpoint.port,
            identifier=endpoint.client_id,
            username=endpoint.username,
            password=endpoint.password,
            # A persistent session: the broker keeps QoS 1 readings while we are away.
            clean_session=False,
            queue_type=_CountingQueue,  # type: ignore[arg-type]  # holds paho's messages too
            max_queued_incoming_messages=endpoint.max_queued_messages,
        )
        # Acknowledge QoS 1 messages ourselves, once their readings are durable (see
        # ingest/acks.py). aiomqtt does not expose paho's manual acks yet (aiomqtt issue
        # #345), so this reaches for its paho client; set before connecting, because the
        # broker resends our session's pending messages straight after CONNACK.
        paho = client._client
        paho.manual_ack_set(True)
        acks = AckTracker(paho.ack)
        # The queue aiomqtt made from our queue_type while constructing the client (and no
        # reference to it left behind once this session ends).
        queue, _CountingQueue.last_made = _CountingQueue.last_made, None
        if queue is None:
            raise RuntimeError("aiomqtt did not make its message queue from queue_type")
        # paho's messages go into the queue as they are: aiomqtt would make a Message of
        # each (1.2 us: its Topic checks the topic again), and ingest reads only the topic,
        # payload, mid and qos that paho's message has already.
        paho.on_message = partial(_queue_message, queue)
        # Plain PUBLISH packets skip paho's MQTTMessage altogether (ingest/lean_publish.py).
        read_publishes_lean(paho, partial(_put, queue))
        buffer_reads(paho)  # fewer system calls per message (ingest/bufsock.py)
        try:
            await self._consume(client, queue, endpoint, acks)
        finally:
            acks.close()

    async def _consume(
        self,
        client: aiomqtt.Client,
        queue: _CountingQueue,
        endpoint: MqttEndpoint,
        acks: AckTracker,
    ) -> None:
        async with client:
            self._client = client
            self._queue_depth = lambda: len(client.messages)
            for topic in endpoint.topics:
                await client.subscribe(topic, qos=endpoint.qos)
            self.subscribed.set()
            self.last_error = None
            metrics.MQTT_CONNECTED.set(1)
            log.info(
                "ingest subscribed to %s on %s:%d",
                ", ".join(endpoint.topics),
                endpoint.host,
                endpoint.port,
            )
            messages = aiter(client.messages)
            taken = 0
            try:
                while True:
                    message: _Incoming
                    if queue.empty():
                        # Wait the documented way: it also notices a lost connection.
                        message = await anext(messages)
                    else:
                        # Under load the queue is rarely empty: take from it directly.
                        # aiomqtt's iterator costs a task and an asyncio.wait per message,
                        # about a sixth of the CPU of a single-reading message.
                        message = queue.get_nowait()
                        taken += 1
                        if taken % _YIELD_EVERY == 0:
                            await asyncio.sleep(0)  # let the API, timers and receive run
                    receipt = acks.received(message.mid, message.qos)
                    self.handle(str(message.topic), _payload_bytes(message.payload), receipt)
                    if self._rows >= self.batch_size:
                        await self.flush()
            finally:
                self._client = None

    async def _tick(self) -> None:
        # The window timer: flushes a part-filled batch once its oldest reading has waited.
        period = max(self.window_ms / 4000, 0.005)
        while True:
            await asyncio.sleep(period)
            self.fold_received()
            if self.due():
                try:
                    await self.flush()
                except Exception:
                    log.exception("flush failed; readings stay staged for the next attempt")


def _registry_error(
    device_id: str, gateway_id: str | None, info: DeviceInfo | None
) -> DecodeError | None:
    if info is None:
        return DecodeError(Reason.UNKNOWN_DEVICE, f"device {device_id!r:.80} is not registered")
    if info.retired:
        return DecodeError(
            Reason.DEVICE_RETIRED,
            f"device {device_id!r} is retired (PATCH its status to active to take it back)",
        )
    if gateway_id is not None and info.gateway_id != gateway_id:
        registered = info.gateway_id or "no gateway (it reports directly)"
        return DecodeError(
            Reason.WRONG_GATEWAY,
            f"device {device_id!r} is registered behind {registered}, not gateway {gateway_id!r}",
        )
    return None


class _Columns:
    """Staged readings (blocks and readings taken alone) as columns, in arrival order."""

    def __init__(self, staged: list[_Staged | _Block]) -> None:
        self.device_ids: list[str] = []
        self.sizes: list[int] = []  # each entry's readings
        self.singles: list[tuple[int, _Staged]] = []  # (row, entry) of readings taken alone
        self.faults: dict[int, str] = {}  # row -> what the sensor says is wrong with it
        ts: list[npt.NDArray[np.int64]] = []
        seq: list[npt.NDArray[np.int64]] = []
        values: list[npt.NDArray[np.float64]] = []
        run: list[DecodedReading] = []  # consecutive readings taken alone, as one part

        def end_run() -> None:
            if run:
                _, ts_col, seq_col, value_rows, _, _ = zip(*run, strict=True)
                ts.append(np.array(ts_col, np.int64))
                seq.append(np.array(seq_col, np.int64))
                values.append(np.array(value_rows, np.float64).reshape(len(run), _NQ))
                run.clear()

        for entry in staged:
            if type(entry) is _Block:
                end_run()
                rows = entry.rows
                self.device_ids += rows.device_ids
                self.sizes.append(len(rows))
                ts.append(rows.ts_ms)
                seq.append(rows.seq)
                values.append(rows.values)
            else:
                assert type(entry) is _Staged
                reading = entry.reading
                row = len(self.device_ids)
                if reading.fault is not None:
                    self.faults[row] = reading.fault
                self.device_ids.append(reading.device_id)
                self.sizes.append(1)
                self.singles.append((row, entry))
                run.append(reading)
        end_run()
        self._entries = staged
        self.ts_ms = ts[0] if len(ts) == 1 else np.concatenate(ts)
        self.seq = seq[0] if len(seq) == 1 else np.concatenate(seq)
        self.values = values[0] if len(values) == 1 else np.concatenate(values)

    def gateway_codes(self, code_of: Callable[[str | None], int]) -> npt.NDArray[np.int32]:
        """Each reading's gateway as the directory's table codes it (one look-up per entry)."""
        codes = [code_of(entry.gateway_id) for entry in self._entries]
        return np.repeat(np.array(codes, np.int32), self.sizes)

    def take(self, keep: npt.NDArray[np.bool_]) -> None:
        """Keep only these rows (the registry refused the others)."""
        self.ts_ms, self.seq, self.values = self.ts_ms[keep], self.seq[keep], self.values[keep]
        new_row = np.cumsum(keep) - 1
        self.faults = {int(new_row[row]): text for row, text in self.faults.items() if keep[row]}


def _apply_offsets(values: np.ndarray[Any, Any], offsets: list[dict[str, float] | None]) -> None:
    """Add each device's registered calibration offsets to the quantities it reported."""
    for row, device_offsets in enumerate(offsets):
        if device_offsets:
            for name, offset in device_offsets.items():
                column = Q_INDEX.get(name)
                if column is not None:
                    values[column, row] += offset  # NaN (not reported) stays NaN


def _fill_from_distance(
    values: np.ndarray[Any, Any], kind: np.ndarray[Any, Any], depth: np.ndarray[Any, Any]
) -> None:
    """Compute fill_pct from an ultrasonic distance and the bin's depth where it is missing."""
    fill, distance = values[_FILL], values[_DISTANCE]
    need = (kind == _BIN) & np.isnan(fill) & ~np.isnan(distance) & ~np.isnan(depth)
    if need.any():
        fill[need] = np.clip((depth[need] - distance[need]) / depth[need] * 100.0, 0.0, 100.0)


def _rejected(
    topic: str, raw: bytes, at_ms: int, error: DecodeError, device_id: str | None
) -> Rejected:
    metrics.REJECTED.labels(error.reason).inc()
    return Rejected(from_ms(at_ms), topic, error.reason, error.detail, raw, device_id)


def _all_done(receipts: list[Receipt | None]) -> None:
    for receipt in receipts:
        if receipt is not None:
            receipt.done()


def _when_all(waits: list[asyncio.Future[None] | None], receipts: list[Receipt | None]) -> None:
    """Mark the receipts done once every future (None: done already) has completed."""
    pending = [w for w in waits if w is not None and not w.done()]
    if not pending:
        _all_done(receipts)
        return
    left = len(pending)

    def one_done(_: asyncio.Future[None]) -> None:
        nonlocal left
        left -= 1
        if left == 0:
            _all_done(receipts)

    for wait in pending:
        wait.add_done_callback(one_done)


# Messages taken straight from the queue between two turns of the event loop.
_YIELD_EVERY = 256


# What the queue holds (see Ingestor._session): plain PUBLISH packets as read by
# lean_publish, paho's messages for the rest, aiomqtt's only if paho's callback is not ours.
_Incoming = Incoming | mqtt.MQTTMessage | aiomqtt.Message


def _put(queue: _CountingQueue, message: _Incoming) -> None:
    """Queue a received message (a full queue counts and logs it)."""
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(message)


def _queue_message(queue: _CountingQueue, _client: Any, _userdata: Any, message: Any) -> None:
    """paho's on_message: queue the message as paho made it."""
    _put(queue, message)


class _CountingQueue(asyncio.Queue[_Incoming]):
    """aiomqtt's incoming queue, with its overflow in the metrics and the log."""

    # The queue made most recently: aiomqtt makes one when a Client is constructed, and the
    # session takes it from here right after, to read from it without aiomqtt's iterator.
    last_made: ClassVar[_CountingQueue | None] = None

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        _CountingQueue.last_made = self

    def put_nowait(self, item: _Incoming) -> None:
        try:
            super().put_nowait(item)
        except asyncio.QueueFull:
            metrics.QUEUE_OVERFLOW.labels(str(item.qos)).inc()
            log.error(
                "ingest queue full (%d messages): the client drops a QoS %d message on %s",
                self.maxsize,
                item.qos,
                item.topic,
            )
            raise


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _dump(item: Any) -> bytes:
    try:
        return orjson.dumps(item)
    except (TypeError, orjson.JSONEncodeError):
        return repr(item).encode()
