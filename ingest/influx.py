"""InfluxDB through its v1-compatible HTTP API (/write, /query): client and batched writer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import httpx
import numpy as np
import numpy.typing as npt

from contract.readings import KIND_NAMES, QUANTITIES
from contract.timeutil import from_ms, to_ms
from ingest import metrics
from ingest.batch import ReadingBatch
from ingest.lineprotocol import escape_key, format_field_value, tag_prefix
from ingest.spool import Spool

log = logging.getLogger(__name__)


class InfluxError(Exception):
    """InfluxDB answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def database_missing(self) -> bool:
        """True when the server says the database does not exist (1.x answers 404)."""
        return self.status == 404 and "database not found" in str(self)

    @property
    def retryable(self) -> bool:
        """True for outages and overload (worth retrying), False for a refused request."""
        return self.status is None or self.status >= 500 or self.status == 429


class InfluxClient:
    """A small async client for the v1 API; works with InfluxDB 1.x, 2.x (v1 compat) and 3.x."""

    def __init__(
        self, url: str, db: str, token: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        self.db = db
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout_s)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxDB at {self.url} unreachable: {exc!r}") from exc
        if response.status_code >= 300:
            raise InfluxError(
                f"InfluxDB {method} {path} answered {response.status_code}: {response.text[:300]}",
                response.status_code,
            )
        return response

    async def ping(self) -> None:
        """Raise InfluxError unless the server answers /ping."""
        await self._request("GET", "/ping")

    async def ensure_database(self) -> None:
        """CREATE DATABASE (1.x); servers that manage databases otherwise may refuse it."""
        try:
            await self._request("POST", "/query", params={"q": f'CREATE DATABASE "{self.db}"'})
        except InfluxError as exc:
            if exc.retryable:
                raise
            log.warning("could not create database %r (may already exist): %s", self.db, exc)

    async def write(self, body: bytes, precision: str = "ms") -> None:
        """POST line protocol to /write."""
        await self._request(
            "POST",
            "/write",
            params={"db": self.db, "precision": precision},
            content=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    async def query(self, influxql: str) -> list[dict[str, Any]]:
        """Run one InfluxQL query; rows as dicts with `time` in epoch ms."""
        response = await self._request(
            "GET", "/query", params={"db": self.db, "q": influxql, "epoch": "ms"}
        )
        rows: list[dict[str, Any]] = []
        for result in response.json().get("results", []):
            if "error" in result:
                raise InfluxError(f"InfluxQL error: {result['error']}", 400)
            for series in result.get("series", []):
                columns = series["columns"]
                rows.extend(dict(zip(columns, values, strict=True)) for values in series["values"])
        return rows


def influxql_string(value: str) -> str:
    """Quote a string literal for InfluxQL."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql_identifier(value: str) -> str:
    """Quote an identifier (measurement, tag key) for InfluxQL."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Field keys are fixed, so escape them once.
_FIELD_KEYS = [escape_key(name) + "=" for name in QUANTITIES]
_NQ = len(QUANTITIES)
_BITS = 1 << np.arange(_NQ, dtype=np.int64)  # a row's fields as bits: quantity i is bit i
_SEQ_BIT = 1 << _NQ


class _Reprs(dict[float, str]):
    """float -> its shortest text (repr), made once: sensors repeat their values (a
    thermometer's 0.1 C steps, whole percents, dBm), and a look-up costs a third of a repr."""

    def __missing__(self, value: float) -> str:
        text = self[value] = repr(value)
        return text


class _Ints(dict[int, str]):
    """int -> its decimal text, made once (sequence numbers repeat across devices)."""

    def __missing__(self, value: int) -> str:
        text = self[value] = str(value)
        return text


# Distinct values a cache keeps before it starts over (about 10 MB at most).
_TEXTS_KEPT = 100_000


class LineEncoder:
    """Turns ReadingBatches into line protocol; tags device_id and kind on every point.

    The tag set is the same for every point (InfluxDB 3 fixes a measurement's tags), and no
    name is both a tag and a field.
    """

    def __init__(self, measurement: str) -> None:
        self.measurement = measurement
        # Each device's "measurement,tags " prefix, by device index (None until first seen).
        self._prefixes: npt.NDArray[np.object_] = np.full(0, None, object)
        self._known = np.zeros(0, bool)
        self._shapes: dict[int, tuple[list[str], str]] = {}
        self._reprs = _Reprs()
        self._ints = _Ints()

    def _prefix(self, device_id: str, kind_code: int) -> str:
        kind = KIND_NAMES.get(kind_code, "unknown")
        return tag_prefix(self.measurement, [("device_id", device_id), ("kind", kind)])

    def _keys(self, fields: int) -> tuple[list[str], str]:
        """For rows with these fields (bits as in _BITS/_SEQ_BIT): the text before each
        field's value, and the text between the last value and the timestamp."""
        known = self._shapes.get(fields)
        if known is None:
            names = [_FIELD_KEYS[i] for i in range(_NQ) if fields >> i & 1]
            if fields & _SEQ_BIT:
                names.append("seq=")
            before = names[:1] + ["," + name for name in names[1:]]
            known = self._shapes[fields] = (before, "i " if fields & _SEQ_BIT else " ")
        return known

    def _line_prefixes(self, batch: ReadingBatch) -> npt.NDArray[np.object_]:
        """Each row's prefix, made once per device and kept by device index."""
        top = int(batch.device.max()) + 1
        if len(self._prefixes) < top:
            size = max(top, 2 * len(self._prefixes))
            grown = np.full(size, None, object)
            grown[: len(self._prefixes)] = self._prefixes
            known = np.zeros(size, bool)
            known[: len(self._known)] = self._known
            self._prefixes, self._known = grown, known
        cache = self._prefixes
        for row in np.flatnonzero(~self._known[batch.device]).tolist():
            index = int(batch.device[row])
            if not self._known[index]:
                cache[index] = self._prefix(batch.device_ids[index], int(batch.kind[row]))
                self._known[index] = True
        prefixes: npt.NDArray[np.object_] = cache[batch.device]
        return prefixes

    def encode(self, batch: ReadingBatch) -> bytes:
        """One line per reading, in batch order, timestamps in ms; a field per quantity the
        reading carried (not NaN), and seq where known."""
        n = len(batch)
        if not n:
            return b""
        # Rows with the same fields are made together, column by column: each value turned
        # into text once (from a cache: sensors repeat their values), then each line joined
        # from its pieces in one call (the batch holds a few such shapes: one per kind).
        values = batch.values
        shape = _BITS @ (values == values) + np.where(batch.seq >= 0, _SEQ_BIT, 0)
        prefixes = self._line_prefixes(batch)
        lines: npt.NDArray[np.object_] = np.empty(n, object)
        first = int(shape[0])
        groups: list[tuple[int, npt.NDArray[np.intp] | None]]
        if (shape == first).all():
            groups = [(first, None)]
        else:
            kinds, which = np.unique(shape, return_inverse=True)
            groups = [(int(k), np.flatnonzero(which == j)) for j, k in enumerate(kinds.tolist())]
        for cache in (self._reprs, self._ints):
            if len(cache) > _TEXTS_KEPT:
                cache.clear()
        float_text, int_text = self._reprs.__getitem__, self._ints.__getitem__
        for fields, rows in groups:
            columns = [i for i in range(_NQ) if fields >> i & 1]
            chosen = values[columns] if rows is None else values[columns][:, rows]
            # -0.0 and 0.0 are one key of the cache: look up 0.0, then mend the few -0.0.
            negative_zero = np.argwhere((chosen == 0) & np.signbit(chosen)).tolist()
            chosen += 0.0
            texts = [list(map(float_text, column)) for column in chosen.tolist()]
            for at, row in negative_zero:
                texts[at][row] = "-0.0"
            if rows is None:
                seq, ts = batch.seq, batch.ts_ms
            else:
                seq, ts = batch.seq[rows], batch.ts_ms[rows]
            if fields & _SEQ_BIT:
                texts.append(list(map(int_text, seq.tolist())))
            before, before_ts = self._keys(fields)
            pieces: list[Iterable[str]] = [(prefixes if rows is None else prefixes[rows]).tolist()]
            for key, column in zip(before, texts, strict=True):
                pieces += (itertools.repeat(key), column)
            pieces += (itertools.repeat(before_ts), map(str, ts.tolist()))
            # repeat() is endless: the columns end the zip.
            made = list(map("".join, zip(*pieces, strict=False)))
            if rows is None:
                lines[:] = made
            else:
                lines[rows] = made
        # Rows reporting a sensor fault (a few, if any) take the fault as a string field.
        for row, text in batch.faults.items():
            lines[row] = self._with_fault(batch, prefixes[row], row, text)
        return ("\n".join(lines.tolist()) + "\n").encode()

    @staticmethod
    def _with_fault(batch: ReadingBatch, prefix: str, row: int, text: str) -> str:
        """A row that reports a sensor fault: its quantities (if any), seq, and the fault as
        a string field, so the report is kept with the readings (few rows: built one by one)."""
        column = batch.values[:, row]
        parts = [
            f"{_FIELD_KEYS[i]}{float(column[i])!r}" for i in range(_NQ) if column[i] == column[i]
        ]
        if batch.seq[row] >= 0:
            parts.append(f"seq={int(batch.seq[row])}i")
        parts.append("fault=" + format_field_value(text))
        return f"{prefix}{','.join(parts)} {int(batch.ts_ms[row])}"


@dataclass(slots=True)
class _Chunk:
    body: bytes
    readings: int
    durable: asyncio.Future[None]  # done once the chunk is in InfluxDB or in the spool


class InfluxWriter:
    """Writes encoded batches in order, retrying with backoff; spools to disk while down.

    `submit` returns a future that completes once the batch is durable: written to
    InfluxDB, or, while InfluxDB does not answer, appended to the disk spool (when one is
    configured). Ingest acknowledges the batch's MQTT messages only then. Spooled chunks
    are written back oldest first when InfluxDB returns, and everything submitted meanwhile
    goes through the spool too, so the order is kept. A chunk InfluxDB refuses as malformed
    (4xx) is not retried, which no retry would fix; that is logged and counted. When too
    many readings wait in memory (InfluxDB down and no spool, or the spool full or its disk
    failing), `submit` blocks, which pushes back on the MQTT consumer: the broker then holds
    the messages in our persistent session instead of our memory growing.
    """

    def __init__(
        self,
        client: InfluxClient,
        encoder: LineEncoder,
        *,
        spool: Spool | None = None,
        max_pending: int = 2_000_000,
        max_body_bytes: int = 4 * 1024 * 1024,
        max_retry_delay_s: float = 30.0,
    ) -> None:
        self._client = client
        self._encoder = encoder
        self.spool = spool
        self._queue: deque[_Chunk] = deque()
        self._max_pending = max_pending
        self._max_body = max_body_bytes
        self._max_retry_delay = max_retry_delay_s
        self._in_memory = 0
        self._changed = asyncio.Condition()
        self._down = False  # the last write failed: new chunks go to the spool
        self.written = 0
        self.last_error: str | None = None
        self.spool_error: str | None = None

    @property
    def pending(self) -> int:
        """Readings accepted but not yet in InfluxDB (in memory or spooled)."""
        return self._in_memory + (self.spool.readings if self.spool else 0)

    def _publish(self) -> None:
        metrics.INFLUX_PENDING.set(self.pending)

    async def submit(self, batch: ReadingBatch) -> asyncio.Future[None]:
        """Queue a batch; waits while memory is over its bound; the future says durable."""
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not len(batch):
            durable.set_result(None)
            return durable
        chunk = _Chunk(self._encoder.encode(batch), len(batch), durable)
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_memory < self._max_pending)
            self._queue.append(chunk)
            self._in_memory += chunk.readings
            self._publish()
            self._changed.notify_all()
        return durable

    async def drain(self) -> None:
        """Wait until every reading is in InfluxDB (memory and spool empty)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.pending == 0)

    async def settle(self) -> None:
        """Wait until every queued reading is durable (in InfluxDB or spooled)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_memory == 0)

    @property
    def _spooling(self) -> bool:
        return self.spool is not None and (self._down or len(self.spool) > 0)

    async def run(self) -> None:
        """Write forever (cancel to stop); the caller settles first for a clean shutdown."""
        delay = 0.2
        retry_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: bool(self._queue) or (self.spool is not None and len(self.spool) > 0)
                )
            if self._spooling:
                await self._spill()
            wait = retry_at - loop.time()
            if wait > 0:
                # Backing off: wake early only to spool newly submitted chunks.
                async with self._changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), wait)
                continue
            if await self._write_next():
                delay, retry_at = 0.2, 0.0
            else:
                retry_at = loop.time() + delay
                delay = min(delay * 2, self._max_retry_delay)

    async def _spill(self) -> None:
        """Move in-memory chunks to the spool, oldest first, until it refuses one."""
        assert self.spool is not None
        while self._queue:
            chunk = self._queue[0]
            try:
                await asyncio.to_thread(self.spool.append, chunk.body, chunk.readings)
            except OSError as exc:
                metrics.SPOOL_ERRORS.inc()
                if self.spool_error != str(exc):
                    log.error(
                        "cannot spool readings to %s: %s; %d readings wait in memory and "
                        "ingest slows down until there is room",
                        self.spool.directory,
                        exc,
                        self._in_memory,
                    )
                self.spool_error = str(exc)
                return
            if self.spool_error is not None:
                log.info("spooling to %s works again", self.spool.directory)
                self.spool_error = None
            self._queue.popleft()
            await self._settled(chunk.readings, [chunk])

    async def _settled(self, readings: int, chunks: list[_Chunk]) -> None:
        async with self._changed:
            self._in_memory -= readings
            self._publish()
            self._changed.notify_all()
        for chunk in chunks:
            if not chunk.durable.done():
                chunk.durable.set_result(None)

    async def _write_next(self) -> bool:
        """Write the oldest spooled or queued readings once; False when it should be retried."""
        if self.spool is not None and len(self.spool) > 0:
            segments = self.spool.oldest(self._max_body)
            try:
                body = await asyncio.to_thread(self.spool.read, segments)
            except OSError as exc:
                metrics.SPOOL_ERRORS.inc()
                log.error("cannot read the spool in %s: %s", self.spool.directory, exc)
                self.spool_error = str(exc)
                return False
            readings = sum(segment.readings for segment in segments)
            if not await self._write(body, readings):
                return False
            self.spool.remove(segments)
            if not len(self.spool):
                log.info("spool drained: every spooled reading is in InfluxDB")
            async with self._changed:
                self._publish()
                self._changed.notify_all()
            return True
        chunks = self._take()
        readings = sum(chunk.readings for chunk in chunks)
        try:
            ok = await self._write(b"".join(chunk.body for chunk in chunks), readings)
        except BaseException:
            self._queue.extendleft(reversed(chunks))  # cancelled mid-write: keep them
            raise
        if not ok:
            self._queue.extendleft(reversed(chunks))
            return False
        await self._settled(readings, chunks)
        return True

    def _take(self) -> list[_Chunk]:
        # Coalesce queued chunks into one request, up to the body limit.
        chunks: list[_Chunk] = []
        size = 0
        while self._queue and (not chunks or size + len(self._queue[0].body) <= self._max_body):
            chunk = self._queue.popleft()
            chunks.append(chunk)
            size += len(chunk.body)
        return chunks

    async def _write(self, body: bytes, readings: int) -> bool:
        """One attempt; True when the readings are written (or refused for good)."""
        try:
            await self._client.write(body)
        except InfluxError as exc:
            metrics.INFLUX_WRITE_ERRORS.inc()
            if exc.database_missing:
                # InfluxDB was down when we started, or the database was dropped.
                log.warning("InfluxDB database %r missing; creating it", self._client.db)
                with contextlib.suppress(InfluxError):
                    await self._client.ensure_database()
                return False
            if not exc.retryable:
                log.error("InfluxDB refused %d readings, not retrying: %s", readings, exc)
                metrics.INFLUX_REFUSED_READINGS.inc(readings)
                return True
            if self.last_error is None:
                where = "spooling to disk" if self.spool is not None else "holding in memory"
                log.warning("InfluxDB write failed (%s), %s and retrying: %s", where, exc, exc)
            self.last_error = str(exc)
            self._down = True
            return False
        if self.last_error is not None:
            log.info("InfluxDB writes succeed again")
        self.last_error = None
        self._down = False
        self.written += readings
        metrics.INFLUX_WRITTEN.inc(readings)
        return True


@asynccontextmanager
async def running_writer(writer: InfluxWriter) -> AsyncIterator[InfluxWriter]:
    """Run the writer in a task; on exit, make what is queued durable, then stop."""
    task = asyncio.create_task(writer.run(), name="influx-writer")
    try:
        yield writer
    finally:
        try:
            if writer.pending:
                # With a spool, settling is quick (what InfluxDB does not take goes to
                # disk for the next start); without one, it waits for InfluxDB.
                await asyncio.wait_for(writer.settle(), timeout=30)
        except TimeoutError:
            log.error("shutdown: %d readings not written to InfluxDB", writer.pending)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class InfluxReadings:
    """Reads stored readings back through InfluxQL (for the API)."""

    def __init__(self, client: InfluxClient, measurement: str) -> None:
        self._client = client
        self._measurement = measurement

    async def readings(
        self, device_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """Readings of one device, newest first; `ts` is RFC 3339, absent fields left out."""
        where = [f'"device_id" = {influxql_string(device_id)}']
        if since is not None:
            where.append(f"time >= {to_ms(since)}ms")
        if until is not None:
            where.append(f"time <= {to_ms(until)}ms")
        query = (
            f"SELECT * FROM {influxql_identifier(self._measurement)} "
            f"WHERE {' AND '.join(where)} ORDER BY time DESC LIMIT {int(limit)}"
        )
        try:
            rows = await self._client.query(query)
        except InfluxError as exc:
            if "database not found" in str(exc):
                return []  # nothing has been written yet
            raise
        out = []
        for row in rows:
            reading = {k: v for k, v in row.items() if v is not None and k != "time"}
            reading["ts"] = from_ms(int(row["time"])).isoformat().replace("+00:00", "Z")
            out.append(reading)
        return out
