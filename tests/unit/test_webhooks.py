"""Webhooks: outbox in SQL, delivered to a real HTTP server on 127.0.0.1, signed, retried."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import h11
import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.egress import EgressPolicy
from dispatch.model import AlertChange, AlertStatus
from dispatch.store import AlertStore
from dispatch.tables import AlertRow
from dispatch.webhooks import (
    Base,
    Subscriber,
    WebhookCreate,
    WebhookOutbox,
    WebhookOutboxRow,
    backoff,
    idempotency_key,
    verify,
)
from rules.events import Action, AlertEvent, Severity
from tests.unit.conftest import api_client, api_services

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
MS = int(T0.timestamp() * 1000)
SECRET = "s3cret-for-the-fire-console"
# The receivers below listen on loopback, which webhooks may reach only when allowlisted.
LOOPBACK = "127.0.0.1/32"


# --- a real HTTP receiver -------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP/1.1 server on 127.0.0.1 that records requests and answers as scripted."""

    answers: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    url: str = ""
    port: int = 0
    error_body: bytes = b"receiver says no"  # what a failed answer carries
    error_reason: bytes = b""  # its status line's reason phrase; empty: h11's standard one
    tls: ssl.SSLContext | None = None  # serve https with this context
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    request, body = event, b""
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert request is not None
                    received = Received(
                        request.method.decode(),
                        request.target.decode(),
                        {k.decode().lower(): v.decode() for k, v in request.headers},
                        body,
                    )
                    self.requests.append(received)
                    writer.write(self._answer(conn))
                    await writer.drain()
                    self.arrived.put_nowait(received)
                    if conn.our_state is h11.MUST_CLOSE:
                        break
                    conn.start_next_cycle()
                else:  # ConnectionClosed
                    break
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _answer(self, conn: h11.Connection) -> bytes:
        answer = self.answers.pop(0) if self.answers else 200
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        payload = b"ok" if status < 300 else self.error_body
        headers = [("content-length", str(len(payload))), *extra.items()]
        reason = self.error_reason if status >= 300 else b""
        return (
            conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
            + conn.send(h11.Data(data=payload))
            + conn.send(h11.EndOfMessage())
        )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@dataclass
class Names:
    """A resolver for tests: the names it is told, and no others (never real DNS)."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


@pytest.fixture
def names() -> Names:
    return Names({"console.example": ["93.184.215.14"]})


@pytest.fixture
async def outbox(sessions: async_sessionmaker[AsyncSession], names: Names) -> WebhookOutbox:
    engine = sessions.kw["bind"]
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    box = WebhookOutbox(sessions, max_attempts=5, policy=EgressPolicy([LOOPBACK], resolver=names))
    await box.load()
    return box


@pytest.fixture
async def client(receiver: Receiver, outbox: WebhookOutbox) -> AsyncIterator[httpx.AsyncClient]:
    # Depends on the receiver so that it closes first (keep-alive connections). The
    # client sigap up delivers with: connections checked against the outbox's policy.
    async with outbox.http_client(timeout_s=5.0) as http:
        yield http


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/nobody-home"


def rule_event(kind: str, device: str, ts_ms: int = MS) -> AlertEvent:
    slot, category, severity = {
        "fire.alarm": ("fire", "fire", Severity.critical),
        "bin.full": ("bin.fill", "bin", Severity.minor),
        "bin.fire": ("bin.fire", "fire", Severity.critical),
        "device.offline": ("device.offline", "device", Severity.major),
    }[kind]
    return AlertEvent(
        Action.raise_, slot, kind, category, device, 0, ts_ms, severity, f"{kind} on {device}"
    )


async def changes_for(sessions: async_sessionmaker[AsyncSession], *kinds: str) -> list[AlertChange]:
    """Real changes from the real alert store (one device per kind)."""
    store = AlertStore(sessions)
    return await store.apply([rule_event(kind, f"dev-{i}") for i, kind in enumerate(kinds)])


async def outbox_rows(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(WebhookOutboxRow)) or 0


async def enqueue(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    changes: list[AlertChange],
    now: datetime = T0,
) -> int:
    """Enqueue in a transaction of its own; how many rows that added."""
    async with sessions() as session, session.begin():
        before = await outbox_rows(session)
        outbox.enqueue(session, changes, now=now)
        await session.flush()
        return await outbox_rows(session) - before


async def subscribe(outbox: WebhookOutbox, url: str, **filters: Any) -> int:
    return (await outbox.subscribe(WebhookCreate(url=url, secret=SECRET, **filters), now=T0)).id


# --- delivery -------------------------------------------------------------------------------


async def test_delivery_is_signed_and_carries_the_change(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    sub = await subscribe(outbox, f"{receiver.url}/hook")
    (change,) = await changes_for(sessions, "fire.alarm")
    assert await enqueue(sessions, outbox, [change]) == 1
    assert await outbox.pending() == 1

    assert await outbox.deliver_due(client, T0) == 1
    (got,) = receiver.requests
    assert (got.method, got.path) == ("POST", "/hook")
    assert got.headers["content-type"] == "application/json"
    # The receiver's own check, as a subscriber would write it.
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-sigap-signature"] == f"sha256={expected}"
    assert verify(SECRET, got.body, got.headers["x-sigap-signature"])
    assert not verify("another-secret-entirely", got.body, got.headers["x-sigap-signature"])
    assert got.headers["idempotency-key"] == idempotency_key(sub, change.event_id)
    assert got.headers["x-sigap-event-id"] == str(change.event_id)
    assert got.headers["x-sigap-timestamp"] == str(int(T0.timestamp()))
    payload = json.loads(got.body)
    assert set(payload) == {"event_id", "type", "alert"}
    assert payload == change.model_dump(mode="json")
    assert payload["type"] == "raised" and payload["alert"]["kind"] == "fire.alarm"

    assert await outbox.pending() == 0
    assert await outbox.deliver_due(client, T0 + timedelta(hours=1)) == 0
    assert len(receiver.requests) == 1
    (delivery,) = await outbox.deliveries(sub, state="delivered")
    assert delivery.attempts == 1 and delivery.delivered_at == T0 and delivery.last_error is None


async def test_retry_after_500_with_the_same_key_and_signature(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    sub = await subscribe(outbox, f"{receiver.url}/hook")
    await enqueue(sessions, outbox, await changes_for(sessions, "fire.alarm"))
    receiver.answers = [500]

    assert await outbox.deliver_due(client, T0) == 0
    (waiting,) = await outbox.deliveries(sub, state="pending")
    assert waiting.attempts == 1
    assert waiting.next_attempt_at == T0 + timedelta(seconds=1)
    assert waiting.last_error == "HTTP 500 Internal Server Error"  # never the body

    assert await outbox.deliver_due(client, T0 + timedelta(milliseconds=999)) == 0  # not due
    assert len(receiver.requests) == 1
    assert await outbox.deliver_due(client, T0 + timedelta(seconds=1)) == 1
    first, second = receiver.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body
    assert first.headers["x-sigap-signature"] == second.headers["x-sigap-signature"]
    assert (first.headers["x-sigap-attempt"], second.headers["x-sigap-attempt"]) == ("1", "2")
    assert await outbox.pending() == 0


async def test_backoff_schedule_then_dead_and_visible_then_redelivered(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    sub = await subscribe(outbox, f"{receiver.url}/hook")
    await enqueue(sessions, outbox, await changes_for(sessions, "fire.alarm"))
    receiver.answers = [503] * 5  # max_attempts=5 in this fixture

    now, delays = T0, []
    for _ in range(4):
        assert await outbox.deliver_due(client, now) == 0
        (row,) = await outbox.deliveries(sub, state="pending")
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    assert delays == [1, 2, 4, 8]
    assert await outbox.deliver_due(client, now) == 0  # the fifth failure
    assert await outbox.pending() == 0 and await outbox.dead() == 1
    (dead,) = await outbox.deliveries(sub, state="dead")
    assert dead.attempts == 5 and dead.dead_at == now and dead.last_error
    assert (await outbox.get(sub)) is not None
    assert (await outbox.get(sub)).dead == 1  # type: ignore[union-attr]
    assert await outbox.deliver_due(client, now + timedelta(days=1)) == 0  # never retried alone
    assert len(receiver.requests) == 5

    assert await outbox.redeliver(sub, now=now) == 1
    assert await outbox.deliver_due(client, now) == 1
    assert await outbox.dead() == 0 and len(receiver.requests) == 6


def test_backoff_doubles_and_caps_at_ten_minutes() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 13)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600,
    ]  # fmt: skip
    assert backoff(1000) == timedelta(minutes=10)


async def test_retry_after_header_is_honoured(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    sub = await subscribe(outbox, f"{receiver.url}/hook")
    await enqueue(sessions, outbox, await changes_for(sessions, "fire.alarm"))
    receiver.answers = [(429, {"retry-after": "30"})]
    await outbox.deliver_due(client, T0)
    (row,) = await outbox.deliveries(sub, state="pending")
    assert row.next_attempt_at == T0 + timedelta(seconds=30)


async def test_an_unreachable_subscriber_holds_its_queue_and_does_not_block_others(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    down = await subscribe(outbox, closed_port_url())
    up = await subscribe(outbox, f"{receiver.url}/up")
    await enqueue(
        sessions, outbox, await changes_for(sessions, "fire.alarm", "bin.full", "bin.fire")
    )

    assert await outbox.deliver_due(client, T0) == 3  # all three to the healthy one
    assert receiver.paths() == ["/up"] * 3
    held = sorted(await outbox.deliveries(down, state="pending"), key=lambda d: d.id)
    # One real attempt (connection refused); the others wait with it, attempts unspent.
    assert [d.attempts for d in held] == [1, 0, 0]
    assert {d.next_attempt_at for d in held} == {T0 + timedelta(seconds=1)}
    assert held[0].last_error == "ConnectError: connection refused"
    assert await outbox.deliveries(up, state="pending") == []


# --- filters, transactions, the subscriber cache -----------------------------------------------


async def test_filters_choose_who_gets_what(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    fire_only = await subscribe(outbox, f"{receiver.url}/fire", categories=["fire"])
    bins = await subscribe(outbox, f"{receiver.url}/bins", kinds=["bin.*"])
    critical = await subscribe(outbox, f"{receiver.url}/critical", min_severity="critical")
    everything = await subscribe(outbox, f"{receiver.url}/all")
    changes = await changes_for(sessions, "fire.alarm", "bin.full", "bin.fire", "device.offline")
    assert await enqueue(sessions, outbox, changes) == 2 + 2 + 2 + 4

    async def kinds_for(sub: int) -> set[str]:
        by_event = {c.event_id: c.alert.kind for c in changes}
        return {by_event[d.event_id] for d in await outbox.deliveries(sub)}

    assert await kinds_for(fire_only) == {"fire.alarm", "bin.fire"}  # a bin fire is a fire
    assert await kinds_for(bins) == {"bin.full", "bin.fire"}
    assert await kinds_for(critical) == {"fire.alarm", "bin.fire"}
    assert await kinds_for(everything) == {"fire.alarm", "bin.full", "bin.fire", "device.offline"}

    assert await outbox.deliver_due(client, T0) == 10
    fire_kinds = {
        json.loads(r.body)["alert"]["kind"] for r in receiver.requests if r.path == "/fire"
    }
    assert fire_kinds == {"fire.alarm", "bin.fire"}  # the full bin never went to /fire


async def test_enqueue_in_a_rolled_back_transaction_sends_nothing(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    await subscribe(outbox, f"{receiver.url}/hook")
    changes = await changes_for(sessions, "fire.alarm")
    with pytest.raises(RuntimeError, match="SQL trouble"):
        async with sessions() as session, session.begin():
            # As inside AlertStore.apply: an alert row and its webhooks in one transaction.
            session.add(
                AlertRow(
                    slot="fire",
                    kind="fire.alarm",
                    category="fire",
                    device_id="dev-x",
                    status="open",
                    severity="critical",
                    reason="r",
                    raised_at=T0,
                    updated_at=T0,
                    values={},
                )
            )
            outbox.enqueue(session, changes, now=T0)
            await session.flush()  # the rows reached the database inside the transaction...
            assert await outbox_rows(session) == 1
            raise RuntimeError("SQL trouble")
    async with sessions() as session:  # ...and left it with the rollback
        assert await session.scalar(select(func.count()).select_from(WebhookOutboxRow)) == 0
        assert (
            await session.scalar(
                select(func.count()).select_from(AlertRow).where(AlertRow.device_id == "dev-x")
            )
            == 0
        )
    assert await outbox.pending() == 0
    assert await outbox.deliver_due(client, T0 + timedelta(hours=1)) == 0
    assert receiver.requests == []


async def test_alert_store_hook_stores_changes_and_webhooks_together(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    sub = await subscribe(outbox, f"{receiver.url}/hook")
    store = AlertStore(sessions, in_transaction=outbox.enqueue)
    (raised,) = await store.apply([rule_event("fire.alarm", "fire-001")])
    acked = await store.act(raised.alert.id, "ack", "Operator Sampit")
    dispatched = await store.act(raised.alert.id, "dispatch", "Operator", station_id="damkar-1")
    assert await outbox.pending() == 3

    assert await outbox.deliver_due(client, datetime.now(UTC)) == 3
    sent = [json.loads(r.body) for r in receiver.requests]
    assert [(m["event_id"], m["type"]) for m in sent] == [
        (raised.event_id, "raised"),
        (acked.event_id, "acknowledged"),
        (dispatched.event_id, "dispatched"),
    ]
    keys = [r.headers["idempotency-key"] for r in receiver.requests]
    assert keys == [idempotency_key(sub, m["event_id"]) for m in sent]


async def test_alert_store_rollback_takes_the_webhooks_with_it(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    await subscribe(outbox, f"{receiver.url}/hook")

    def enqueue_then_fail(session: AsyncSession, changes: Sequence[AlertChange]) -> None:
        outbox.enqueue(session, changes)
        raise RuntimeError("the commit never happens")

    store = AlertStore(sessions, in_transaction=enqueue_then_fail)
    with pytest.raises(RuntimeError):
        await store.apply([rule_event("fire.alarm", "fire-001")])
    assert await store.find(device_id="fire-001") == []
    assert await outbox.pending() == 0
    assert await outbox.deliver_due(client, datetime.now(UTC) + timedelta(hours=1)) == 0
    assert receiver.requests == []


async def test_subscriber_cache_follows_subscribe_and_delete(
    sessions: async_sessionmaker[AsyncSession], outbox: WebhookOutbox, receiver: Receiver
) -> None:
    assert not outbox.subscribers
    first = await subscribe(outbox, f"{receiver.url}/a", categories=["fire"])
    second = await subscribe(outbox, f"{receiver.url}/b")
    assert [s.id for s in outbox.subscribers] == [first, second]
    changes = await changes_for(sessions, "fire.alarm")
    assert await enqueue(sessions, outbox, changes) == 2

    assert await outbox.delete(first) is True
    assert [s.id for s in outbox.subscribers] == [second]
    assert await outbox.deliveries(first) == []  # its queue went with it
    assert await outbox.delete(first) is False
    more = await changes_for(sessions, "bin.fire")
    assert await enqueue(sessions, outbox, more) == 1

    # An explicit snapshot instead of the cache: its filters are the ones that count.
    offline = await changes_for(sessions, "device.offline")
    async with sessions() as session, session.begin():
        before = await outbox_rows(session)
        fire_only = [Subscriber(second, categories=frozenset({"fire"}))]
        outbox.enqueue(session, offline, subscribers=fire_only, now=T0)
        await session.flush()
        assert await outbox_rows(session) == before
        outbox.enqueue(session, offline, subscribers=[Subscriber(second)], now=T0)
        await session.flush()
        assert await outbox_rows(session) == before + 1


async def test_enqueue_before_load_queues_nothing_and_does_not_raise(
    sessions: async_sessionmaker[AsyncSession], outbox: WebhookOutbox
) -> None:
    await subscribe(outbox, "http://127.0.0.1:9/x")
    fresh = WebhookOutbox(sessions)  # never loaded
    changes = await changes_for(sessions, "fire.alarm")
    async with sessions() as session, session.begin():
        fresh.enqueue(session, changes, now=T0)
    assert await fresh.pending() == 0


def test_subscriber_filters_without_sql() -> None:
    from dispatch.model import AlertPublic

    def alert(kind: str, category: str, severity: str) -> AlertPublic:
        return AlertPublic(
            id=1,
            slot=kind,
            kind=kind,
            category=category,
            device_id="d",
            status=AlertStatus.open,
            severity=severity,
            reason="r",
            raised_at=T0,
            updated_at=T0,
        )

    fire = Subscriber(1, categories=frozenset({"fire"}))
    assert fire.wants(alert("bin.fire", "fire", "critical"))
    assert not fire.wants(alert("bin.full", "bin", "minor"))
    major = Subscriber(2, min_severity=Severity.major)
    assert major.wants(alert("device.offline", "device", "major"))
    assert not major.wants(alert("device.offline", "device", "minor"))
    assert not major.wants(alert("x", "x", "unheard-of"))
    exact = Subscriber(3, kinds=("fire.confirmed",))
    assert exact.wants(alert("fire.confirmed", "fire", "critical"))
    assert not exact.wants(alert("fire.alarm", "fire", "critical"))


# --- the run loop ---------------------------------------------------------------------------


async def test_run_delivers_on_commit_and_stops_when_asked(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    await subscribe(outbox, f"{receiver.url}/hook")
    stop = asyncio.Event()
    # A long poll: only the wake-up on commit can make the delivery happen in time.
    task = asyncio.create_task(outbox.run(client, stop, poll_s=3600))
    changes = await changes_for(sessions, "fire.alarm")
    await enqueue(sessions, outbox, changes, now=datetime.now(UTC))
    got = await asyncio.wait_for(receiver.arrived.get(), timeout=10)
    assert json.loads(got.body)["event_id"] == changes[0].event_id
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_run_stops_on_cancellation(
    sessions: async_sessionmaker[AsyncSession],
    outbox: WebhookOutbox,
    receiver: Receiver,
    client: httpx.AsyncClient,
) -> None:
    sub = await subscribe(outbox, f"{receiver.url}/hook")
    await enqueue(sessions, outbox, await changes_for(sessions, "fire.alarm"), now=T0)
    task = asyncio.create_task(outbox.run(client, poll_s=3600))
    await asyncio.wait_for(receiver.arrived.get(), timeout=10)  # the loop is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Cancelled before or after recording the answer: either way the message is not lost.
    # Unrecorded, it stays claimed for the lease and then goes again with the same key.
    (row,) = await outbox.deliveries(sub)
    assert row.delivered_at is not None or row.next_attempt_at > datetime.now(UTC)


# --- schemas and the router -------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "ftp://example.org/x", "secret": SECRET},
        {"url": "http:///no-host", "secret": SECRET},
        {"url": "https://example.org/x", "secret": "too-short"},
        {"url": "https://example.org/x", "secret": SECRET, "categories": []},
        {"url": "https://example.org/x", "secret": SECRET, "min_severity": "huge"},
    ],
)
def test_webhook_create_refuses(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookCreate(**bad)


@pytest.fixture
async def api(
    sessions: async_sessionmaker[AsyncSession], outbox: WebhookOutbox
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api_services(sessions, webhooks=outbox)) as http:
        yield http


async def test_api_subscribe_list_deliveries_delete(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/api/v1/webhooks",
        json={"url": "https://console.example/hook", "secret": SECRET, "categories": ["fire"]},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert "secret" not in body and SECRET not in created.text
    assert body["secret_hint"] == "…" + SECRET[-4:]
    assert body["categories"] == ["fire"] and body["pending"] == 0
    hook = body["id"]

    bad = await api.post("/api/v1/webhooks", json={"url": "file:///etc/passwd", "secret": SECRET})
    assert bad.status_code == 422

    listed = await api.get("/api/v1/webhooks")
    assert [w["id"] for w in listed.json()] == [hook] and SECRET not in listed.text
    assert (await api.get(f"/api/v1/webhooks/{hook}/deliveries?state=dead")).json() == []
    assert (await api.post(f"/api/v1/webhooks/{hook}/redeliver")).json() == {"requeued": 0}

    assert (await api.delete(f"/api/v1/webhooks/{hook}")).status_code == 204
    assert (await api.delete(f"/api/v1/webhooks/{hook}")).status_code == 404
    assert (await api.get(f"/api/v1/webhooks/{hook}")).status_code == 404


async def test_api_without_webhooks_answers_503(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with api_client(api_services(sessions)) as http:  # no outbox in this process
        assert (await http.get("/api/v1/webhooks")).status_code == 503
