"""Outbound webhooks: an outbox in SQL, delivered at least once, signed, retried with backoff."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from contract.alerts import Severity
from contract.sqltypes import NAMING_CONVENTION, UTCDateTime
from dispatch.egress import (
    EgressError,
    EgressPolicy,
    PinnedClient,
    host_and_port,
    http_error,
    pinned_client,
    transport_error,
    url_problem,
)
from dispatch.model import AlertChange, AlertPublic

log = logging.getLogger(__name__)

WEBHOOK_DELIVERIES = Counter(
    "sigap_webhook_deliveries_total", "Webhook delivery attempts", ["result"]
)
WEBHOOK_PENDING = Gauge("sigap_webhook_pending", "Webhook messages waiting for delivery")
WEBHOOK_DEAD = Gauge("sigap_webhook_dead", "Webhook messages that ran out of attempts")
SEVERITY_RANK: dict[str, int] = {"info": 0, "minor": 1, "major": 2, "critical": 3}
SIGNATURE_HEADER = "X-Sigap-Signature"
USER_AGENT = "Sigap-Webhooks/0.1"
# Answers that say "the receiver is unwell", not "this one message is wrong": the rest of
# that subscriber's queue waits with the failed message instead of hammering it.
_BACK_OFF_STATUSES = frozenset({408, 429})
_WAKE_ON_COMMIT = "sigap.webhooks.wake_on_commit"  # session.info flag: listener registered

DeliveryState = Literal["pending", "delivered", "dead"]


class Base(DeclarativeBase):
    """Declarative base for the webhook tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class WebhookSubscriberRow(Base):
    """Who gets alert changes by HTTP POST, with optional filters."""

    __tablename__ = "webhook_subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    categories: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    kinds: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    min_severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookOutboxRow(Base):
    """One alert change for one subscriber, kept until delivered (or dead, and visible)."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscribers.id"), index=True)
    event_id: Mapped[int] = mapped_column(Integer, index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    body: Mapped[str] = mapped_column(Text)  # the exact JSON that is signed and sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        # The delivery loop asks "what is due?" every second; only undelivered rows matter.
        Index(
            "ix_webhook_outbox_due",
            "next_attempt_at",
            sqlite_where=text("delivered_at IS NULL AND dead_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL AND dead_at IS NULL"),
        ),
    )


class WebhookCreate(BaseModel):
    """A webhook subscription as a client registers it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000,
        description="http(s) URL that receives POSTs: a public address (or one in "
        "SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS), without user name or password.",
    )
    secret: str = Field(
        min_length=16,
        max_length=200,
        description="Shared secret: X-Sigap-Signature is sha256=HMAC-SHA256(secret, body).",
    )
    categories: list[str] | None = Field(
        default=None, min_length=1, description="Only these alert categories (e.g. fire)."
    )
    kinds: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only these alert kinds; `fire.*` matches every fire kind.",
    )
    min_severity: Severity | None = Field(default=None, description="Only this severity or more.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        # Syntax only; where the host leads is checked by WebhookOutbox.subscribe (async).
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class WebhookPublic(BaseModel):
    """A webhook subscription as the API shows it: never the secret, only a hint of it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    categories: list[str] | None
    kinds: list[str] | None
    min_severity: Severity | None
    active: bool
    created_at: datetime
    secret_hint: str | None = Field(
        description="The secret's last 4 characters, to tell secrets apart; null unless admin."
    )
    pending: int = 0  # changes waiting for delivery
    dead: int = 0  # changes that ran out of attempts (see deliveries?state=dead)


class WebhookDelivery(BaseModel):
    """One outbox entry: an alert change on its way to one subscriber."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    subscriber_id: int
    event_id: int
    idempotency_key: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Subscriber:
    """What enqueue needs to know about an active subscriber: its id and filters."""

    id: int
    categories: frozenset[str] | None = None
    kinds: tuple[str, ...] | None = None
    min_severity: Severity | None = None

    def wants(self, alert: AlertPublic) -> bool:
        """Whether this alert passes every filter the subscriber set."""
        if self.categories is not None and alert.category not in self.categories:
            return False
        if self.kinds is not None and not any(_kind_matches(p, alert.kind) for p in self.kinds):
            return False
        return self.min_severity is None or (
            SEVERITY_RANK.get(alert.severity, 0) >= SEVERITY_RANK[self.min_severity]
        )


def idempotency_key(subscriber_id: int, event_id: int) -> str:
    """The key a receiver deduplicates on: the same for every retry of one change."""
    return f"sigap-{subscriber_id}-{event_id}"


def sign(secret: str, body: bytes) -> str:
    """The X-Sigap-Signature value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Receiver side: whether a signature header matches the body (constant time)."""
    return hmac.compare_digest(sign(secret, body), signature)


def backoff(attempts: int, base_s: float = 1.0, max_s: float = 600.0) -> timedelta:
    """Delay after the n-th failed attempt: base, 2 base, 4 base ..., capped."""
    return timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), max_s))


@dataclass(slots=True)
class _Due:
    id: int
    subscriber_id: int
    event_id: int
    key: str
    body: str
    attempts: int
    url: str
    secret: str


@dataclass(slots=True)
class _Outcome:
    due: _Due
    ok: bool
    error: str | None = None
    back_off: bool = False  # the receiver is unwell: hold its other messages too
    retry_after_s: float | None = None


class WebhookOutbox:
    """Webhook subscribers and their outbox: enqueue in the alert's transaction, deliver later."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_attempts: int = 20,
        base_delay_s: float = 1.0,
        max_delay_s: float = 600.0,
        batch_size: int = 100,
        lease_s: float = 120.0,
        concurrency: int = 8,
        policy: EgressPolicy | None = None,
    ) -> None:
        if max_attempts < 1 or batch_size < 1 or concurrency < 1:
            raise ValueError("max_attempts, batch_size and concurrency must be at least 1")
        self._sessions = sessions
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.batch_size = batch_size
        # A claimed row is not due again for this long, so that a second instance (or this
        # one after a crash mid-request) retries it only once the first has surely given up.
        self.lease = timedelta(seconds=lease_s)
        self.concurrency = concurrency
        # Where posts may go (public addresses and the allowlist), at subscribe and delivery.
        self.policy = policy or EgressPolicy()
        self._subscribers: tuple[Subscriber, ...] | None = None
        self._wake = asyncio.Event()

    # --- subscribers ----------------------------------------------------------------------

    async def load(self) -> tuple[Subscriber, ...]:
        """Read the active subscribers into the in-memory snapshot enqueue uses."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(WebhookSubscriberRow)
                .where(WebhookSubscriberRow.active.is_(True))
                .order_by(WebhookSubscriberRow.id)
            )
            self._subscribers = tuple(_subscriber(row) for row in rows)
        return self._subscribers

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """The snapshot enqueue filters against (empty until `load`)."""
        return self._subscribers or ()

    async def subscribe(self, create: WebhookCreate, now: datetime | None = None) -> WebhookPublic:
        """Add a subscriber; it receives changes stored from now on.

        Raises EgressError when the URL's host is, or resolves to, an address that is not
        public and not allowlisted (or does not resolve).
        """
        await self.policy.check(*host_and_port(create.url))
        row = WebhookSubscriberRow(
            url=create.url,
            secret=create.secret,
            categories=create.categories,
            kinds=create.kinds,
            min_severity=create.min_severity.value if create.min_severity else None,
            active=True,
            created_at=now or datetime.now(UTC),
        )
        async with self._sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            public = _public(row)
        await self.load()
        return public

    async def list(self) -> builtins.list[WebhookPublic]:
        """Every subscriber with its pending and dead counts, oldest first."""
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(WebhookSubscriberRow).order_by(WebhookSubscriberRow.id)
                )
            )
            counts = await self._counts(session, [r.id for r in rows])
        return [_public(row, *counts.get(row.id, (0, 0))) for row in rows]

    async def get(self, subscriber_id: int) -> WebhookPublic | None:
        """One subscriber, or None."""
        async with self._sessions() as session:
            row = await session.get(WebhookSubscriberRow, subscriber_id)
            if row is None:
                return None
            counts = await self._counts(session, [row.id])
        return _public(row, *counts.get(row.id, (0, 0)))

    async def delete(self, subscriber_id: int) -> bool:
        """Remove a subscriber and its undelivered messages; False if there was none."""
        async with self._sessions() as session, session.begin():
            row = await session.get(WebhookSubscriberRow, subscriber_id)
            if row is None:
                return False
            # Whoever unsubscribed asked for nothing more; its history goes with it.
            await session.execute(
                delete(WebhookOutboxRow).where(WebhookOutboxRow.subscriber_id == subscriber_id)
            )
            await session.delete(row)
        await self.load()
        return True

    # --- enqueue (inside the alert's transaction) ------------------------------------------

    def enqueue(
        self,
        session: AsyncSession,
        changes: Sequence[AlertChange],
        *,
        subscribers: Iterable[Subscriber] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Add outbox rows for these changes to the caller's open transaction.

        No I/O: the rows are written when the caller flushes or commits, so an alert change
        and its webhooks are stored together or not at all. Filters use the snapshot from
        `load` (kept fresh by subscribe/delete and the `run` loop) unless `subscribers` is
        given. Call it once per change: the idempotency key is unique in SQL.
        """
        if subscribers is None and self._subscribers is None:
            # Raising would roll back the alert itself; a missing webhook is the lesser harm.
            log.error("webhook outbox used before load(): %d changes not queued", len(changes))
            return
        targets = tuple(self.subscribers if subscribers is None else subscribers)
        if not targets or not changes:
            return
        at = now or datetime.now(UTC)
        rows: dict[str, WebhookOutboxRow] = {}
        for change in changes:
            body: str | None = None
            for sub in targets:
                if not sub.wants(change.alert):
                    continue
                body = body or change.model_dump_json()
                key = idempotency_key(sub.id, change.event_id)
                rows[key] = WebhookOutboxRow(
                    subscriber_id=sub.id,
                    event_id=change.event_id,
                    idempotency_key=key,
                    body=body,
                    attempts=0,
                    next_attempt_at=at,
                    created_at=at,
                )
        session.add_all(rows.values())
        if rows and not session.info.get(_WAKE_ON_COMMIT):
            # Deliver as soon as the alert's transaction commits (never on a rollback).
            session.info[_WAKE_ON_COMMIT] = True
            event.listen(session.sync_session, "after_commit", self._wake_on_commit)

    def _wake_on_commit(self, _session: Session) -> None:
        self._wake.set()

    def wake(self) -> None:
        """Ask the `run` loop to look for due messages now (enqueue does so on commit)."""
        self._wake.set()

    # --- delivery ---------------------------------------------------------------------------

    def http_client(self, timeout_s: float = 10.0) -> PinnedClient:
        """The client to deliver with: each connection checked against the policy and made
        to the address that was checked; no redirects, no proxies from the environment."""
        return pinned_client(self.policy, timeout_s=timeout_s)

    async def deliver_due(self, client: httpx.AsyncClient, now: datetime) -> int:
        """One pass over the messages due at `now`; how many were delivered."""
        _tried, delivered = await self._pass(client, now)
        return delivered

    async def run(
        self,
        client: httpx.AsyncClient,
        stop: asyncio.Event | None = None,
        *,
        poll_s: float = 1.0,
        refresh_s: float = 15.0,
    ) -> None:
        """Deliver until `stop` is set or the task is cancelled; SQL or network trouble waits."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        refreshed_at: float | None = None
        while not stop.is_set():
            self._wake.clear()  # before the pass: a wake during it means "look again"
            full = False
            try:
                if refreshed_at is None or loop.time() - refreshed_at >= refresh_s:
                    # Other instances (PostgreSQL deployments) may have changed subscribers.
                    await self.load()
                    WEBHOOK_PENDING.set(await self.pending())
                    WEBHOOK_DEAD.set(await self.dead())
                    refreshed_at = loop.time()
                tried, _ = await self._pass(client, datetime.now(UTC))
                full = tried >= self.batch_size
            except Exception:
                log.exception("webhook delivery pass failed; trying again in %.1f s", poll_s)
            if not full:
                await _wait_any((stop, self._wake), poll_s)

    async def _pass(self, client: httpx.AsyncClient, now: datetime) -> tuple[int, int]:
        due = await self._claim(now)
        if not due:
            return 0, 0
        groups: dict[int, builtins.list[_Due]] = {}
        for item in due:
            groups.setdefault(item.subscriber_id, []).append(item)
        limit = asyncio.Semaphore(self.concurrency)

        async def one_subscriber(items: builtins.list[_Due]) -> builtins.list[_Outcome]:
            async with limit:
                outcomes: builtins.list[_Outcome] = []
                for item in items:
                    outcome = await _post(client, item, now, self.policy)
                    outcomes.append(outcome)
                    if outcome.back_off:
                        break
                return outcomes

        results = await asyncio.gather(*(one_subscriber(items) for items in groups.values()))
        delivered = await self._record(groups, results, now)
        return len(due), delivered

    async def _claim(self, now: datetime) -> builtins.list[_Due]:
        """Take the due rows and push them past the lease, in one transaction."""
        query = (
            select(WebhookOutboxRow, WebhookSubscriberRow.url, WebhookSubscriberRow.secret)
            .join(WebhookSubscriberRow, WebhookSubscriberRow.id == WebhookOutboxRow.subscriber_id)
            .where(
                WebhookOutboxRow.delivered_at.is_(None),
                WebhookOutboxRow.dead_at.is_(None),
                WebhookOutboxRow.next_attempt_at <= now,
                WebhookSubscriberRow.active.is_(True),
            )
            .order_by(WebhookOutboxRow.id)
            .limit(self.batch_size)
            # PostgreSQL: instances skip each other's claimed rows (SQLite ignores this).
            .with_for_update(skip_locked=True, of=WebhookOutboxRow)
        )
        async with self._sessions() as session, session.begin():
            found = (await session.execute(query)).all()
            for row, _url, _secret in found:
                row.next_attempt_at = now + self.lease
            return [
                _Due(
                    id=row.id,
                    subscriber_id=row.subscriber_id,
                    event_id=row.event_id,
                    key=row.idempotency_key,
                    body=row.body,
                    attempts=row.attempts,
                    url=url,
                    secret=secret,
                )
                for row, url, secret in found
            ]

    async def _record(
        self,
        groups: dict[int, builtins.list[_Due]],
        results: Sequence[builtins.list[_Outcome]],
        now: datetime,
    ) -> int:
        delivered = 0
        async with self._sessions() as session, session.begin():
            for items, outcomes in zip(groups.values(), results, strict=True):
                hold_until: datetime | None = None
                for outcome in outcomes:
                    values, result = self._after(outcome, now)
                    WEBHOOK_DELIVERIES.labels(result).inc()
                    delivered += result == "delivered"
                    if outcome.back_off and result == "failed":
                        hold_until = now + self._delay(outcome)
                    await session.execute(
                        update(WebhookOutboxRow)
                        .where(WebhookOutboxRow.id == outcome.due.id)
                        .values(**values)
                    )
                # Not attempted because the receiver just failed: wait with the failed one,
                # without spending an attempt. Otherwise release the lease at once.
                skipped = [item.id for item in items[len(outcomes) :]]
                if skipped:
                    await session.execute(
                        update(WebhookOutboxRow)
                        .where(WebhookOutboxRow.id.in_(skipped))
                        .values(next_attempt_at=hold_until or now)
                    )
        return delivered

    def _after(self, outcome: _Outcome, now: datetime) -> tuple[dict[str, object], str]:
        """The row's new values after one attempt, and its result for the metrics."""
        attempts = outcome.due.attempts + 1
        if outcome.ok:
            return {"attempts": attempts, "delivered_at": now, "last_error": None}, "delivered"
        values: dict[str, object] = {"attempts": attempts, "last_error": outcome.error}
        if attempts >= self.max_attempts:
            values["dead_at"] = now
            return values, "dead"
        values["next_attempt_at"] = now + self._delay(outcome)
        return values, "failed"

    def _delay(self, outcome: _Outcome) -> timedelta:
        delay = backoff(outcome.due.attempts + 1, self.base_delay_s, self.max_delay_s)
        if outcome.retry_after_s is not None:
            retry_after = timedelta(seconds=min(outcome.retry_after_s, self.max_delay_s))
            delay = max(delay, retry_after)
        return delay

    # --- visibility ------------------------------------------------------------------------

    async def pending(self) -> int:
        """Messages not yet delivered and not dead (for metrics)."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(func.count()).where(
                    WebhookOutboxRow.delivered_at.is_(None), WebhookOutboxRow.dead_at.is_(None)
                )
            )
        return int(found or 0)

    async def dead(self) -> int:
        """Messages that ran out of attempts (for metrics)."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(func.count()).where(WebhookOutboxRow.dead_at.is_not(None))
            )
        return int(found or 0)

    async def deliveries(
        self,
        subscriber_id: int,
        *,
        state: DeliveryState | None = None,
        limit: int = 100,
    ) -> builtins.list[WebhookDelivery]:
        """A subscriber's messages, newest first, optionally in one state."""
        query = (
            select(WebhookOutboxRow)
            .where(WebhookOutboxRow.subscriber_id == subscriber_id)
            .order_by(WebhookOutboxRow.id.desc())
            .limit(limit)
        )
        if state == "pending":
            query = query.where(
                WebhookOutboxRow.delivered_at.is_(None), WebhookOutboxRow.dead_at.is_(None)
            )
        elif state == "delivered":
            query = query.where(WebhookOutboxRow.delivered_at.is_not(None))
        elif state == "dead":
            query = query.where(WebhookOutboxRow.dead_at.is_not(None))
        async with self._sessions() as session:
            return [WebhookDelivery.model_validate(row) for row in await session.scalars(query)]

    async def redeliver(self, subscriber_id: int, now: datetime | None = None) -> int:
        """Give a subscriber's dead messages a fresh set of attempts; how many."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(WebhookOutboxRow)
                .where(
                    WebhookOutboxRow.subscriber_id == subscriber_id,
                    WebhookOutboxRow.dead_at.is_not(None),
                )
                .values(dead_at=None, attempts=0, next_attempt_at=now or datetime.now(UTC))
            )
        self.wake()
        return int(getattr(result, "rowcount", 0) or 0)

    async def _counts(
        self, session: AsyncSession, subscriber_ids: builtins.list[int]
    ) -> dict[int, tuple[int, int]]:
        if not subscriber_ids:
            return {}
        open_ = WebhookOutboxRow.delivered_at.is_(None) & WebhookOutboxRow.dead_at.is_(None)
        rows = await session.execute(
            select(
                WebhookOutboxRow.subscriber_id,
                func.count().filter(open_),
                func.count().filter(WebhookOutboxRow.dead_at.is_not(None)),
            )
            .where(WebhookOutboxRow.subscriber_id.in_(subscriber_ids))
            .group_by(WebhookOutboxRow.subscriber_id)
        )
        return {sid: (int(pending), int(dead)) for sid, pending, dead in rows}


async def _post(
    client: httpx.AsyncClient, due: _Due, now: datetime, policy: EgressPolicy
) -> _Outcome:
    problem = url_problem(due.url)  # a row from before the URL rules, or edited in SQL
    if problem is not None:
        return _Outcome(due, ok=False, error=f"refused: {problem}"[:200], back_off=True)
    body = due.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Sigap-Event-Id": str(due.event_id),
        "Idempotency-Key": due.key,
        SIGNATURE_HEADER: sign(due.secret, body),
        "X-Sigap-Timestamp": str(int(now.timestamp())),
        "X-Sigap-Attempt": str(due.attempts + 1),
    }
    try:
        if not (isinstance(client, PinnedClient) and client.policy is policy):
            # A client of another making: check here, as its connections do not. (DNS may
            # answer it differently; http_client() closes that gap.)
            await policy.check(*host_and_port(due.url))
        async with client.stream("POST", due.url, content=body, headers=headers) as response:
            if response.is_success:
                return _Outcome(due, ok=True)
            # The body is never read: what a receiver (or whatever answered in its place)
            # says is not ours to keep, and every role can read last_error.
            status = response.status_code
            return _Outcome(
                due,
                ok=False,
                error=http_error(status),
                back_off=status >= 500 or status in _BACK_OFF_STATUSES,
                retry_after_s=_retry_after(response.headers.get("Retry-After")),
            )
    except EgressError as exc:
        # Refused now even if allowed at subscribe: DNS changes. Retried with backoff, as
        # DNS may change back (or the allowlist be widened).
        return _Outcome(due, ok=False, error=exc.short, back_off=True)
    except httpx.HTTPError as exc:
        return _Outcome(due, ok=False, error=transport_error(exc), back_off=True)


def _retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form; an HTTP-date falls back to our own backoff.
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


async def _wait_any(events: Sequence[asyncio.Event], timeout_s: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await waiter


def _subscriber(row: WebhookSubscriberRow) -> Subscriber:
    return Subscriber(
        id=row.id,
        categories=frozenset(row.categories) if row.categories else None,
        kinds=tuple(row.kinds) if row.kinds else None,
        min_severity=Severity(row.min_severity) if row.min_severity else None,
    )


def _public(row: WebhookSubscriberRow, pending: int = 0, dead: int = 0) -> WebhookPublic:
    return WebhookPublic(
        id=row.id,
        url=row.url,
        categories=row.categories,
        kinds=row.kinds,
        min_severity=Severity(row.min_severity) if row.min_severity else None,
        active=row.active,
        created_at=row.created_at,
        secret_hint="…" + row.secret[-4:],
        pending=pending,
        dead=dead,
    )


def _kind_matches(pattern: str, kind: str) -> bool:
    if pattern.endswith(".*"):
        return kind.startswith(pattern[:-1])
    return pattern == kind
