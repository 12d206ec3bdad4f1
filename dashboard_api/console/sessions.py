"""Console sign-ins: a random cookie secret that stands, in SQL, for the API token behind it.

Only hashes are stored: the SHA-256 of the cookie's secret (the key) and of the token the
session was opened with. The principal is found again through the token's hash on every
use (dashboard_api.auth), so a revoked token ends its sessions and a session never holds
more than its token does.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard_api.access.tables import ConsoleSessionRow
from dashboard_api.access.tokens import hash_token

SESSION_IDLE = timedelta(hours=12)
# Sliding the expiry is a write: once a minute per session at most, not on every request,
# so the idle limit holds to within a minute.
SLIDE_EVERY = timedelta(minutes=1)
# A session looked up recently is trusted this long without asking SQL again. Signing out
# here takes effect at once (the entry is dropped); on another instance within this time.
CACHE_FOR = timedelta(seconds=5)
_CACHE_MAX = 10_000  # bounded: a flood of made-up cookies cannot grow it

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, as an aware UTC datetime."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """One signed-in console, as stored (no secret in it)."""

    key: str  # SHA-256 of the cookie's secret
    token_hash: str  # SHA-256 of the API token it was opened with
    csrf_token: str  # sent back in X-CSRF-Token on every write
    created_at: datetime
    last_seen_at: datetime  # when the expiry was last slid forward
    expires_at: datetime


class SessionStore:
    """Console sessions in SQL, with a short in-memory cache of lookups."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        idle: timedelta = SESSION_IDLE,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self.idle = idle
        self._clock = clock
        self._cache: dict[str, tuple[datetime, ConsoleSession | None]] = {}

    async def open(self, token_hash: str) -> tuple[str, ConsoleSession]:
        """Start a session for the token with this hash: (the cookie's secret, the session).

        The secret is in the answer only; expired sessions are cleared out on the way.
        """
        now = self._clock()
        secret = secrets.token_urlsafe(32)  # 256 bits
        session = ConsoleSession(
            key=hash_token(secret),
            token_hash=token_hash,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.idle,
        )
        async with self._sessions() as sql:
            await sql.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now))
            sql.add(
                ConsoleSessionRow(
                    session_hash=session.key,
                    token_hash=session.token_hash,
                    csrf_token=session.csrf_token,
                    created_at=session.created_at,
                    last_seen_at=session.last_seen_at,
                    expires_at=session.expires_at,
                )
            )
            await sql.commit()
        self._remember(session.key, session, now)
        return secret, session

    async def get(self, secret: str, *, slide: bool = True) -> ConsoleSession | None:
        """The live session behind a cookie's secret, its expiry slid forward; else None."""
        key = hash_token(secret)
        now = self._clock()
        session = await self._load(key, now)
        if session is None:
            return None
        if session.expires_at <= now:
            await self._delete(key)
            return None
        if slide and now - session.last_seen_at >= SLIDE_EVERY:
            return await self._slide(session, now)
        return session

    async def end(self, session: ConsoleSession) -> None:
        """Delete a session (sign-out, or its token was revoked): at once in this process."""
        await self._delete(session.key)

    async def _load(self, key: str, now: datetime) -> ConsoleSession | None:
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as sql:
            row = await sql.get(ConsoleSessionRow, key)
        if self._ended_meanwhile(key, now):
            return None
        session = None if row is None else _session(row)
        self._remember(key, session, now)
        return session

    async def _slide(self, session: ConsoleSession, now: datetime) -> ConsoleSession | None:
        slid = replace(session, last_seen_at=now, expires_at=now + self.idle)
        async with self._sessions() as sql:
            result = await sql.execute(
                update(ConsoleSessionRow)
                .where(
                    ConsoleSessionRow.session_hash == session.key,
                    ConsoleSessionRow.expires_at > now,
                )
                .values(last_seen_at=slid.last_seen_at, expires_at=slid.expires_at)
            )
            await sql.commit()
        if self._ended_meanwhile(session.key, now):
            return None
        if not getattr(result, "rowcount", 0):  # signed out on another instance meanwhile
            self._remember(session.key, None, now)
            return None
        self._remember(session.key, slid, now)
        return slid

    async def _delete(self, key: str) -> None:
        # Marked gone before SQL is asked, so a lookup already under way cannot put the
        # session back into the cache (see _ended_meanwhile).
        self._remember(key, None, self._clock())
        async with self._sessions() as sql:
            await sql.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.session_hash == key)
            )
            await sql.commit()

    def _ended_meanwhile(self, key: str, now: datetime) -> bool:
        """True when the session was ended while a lookup of it awaited SQL.

        A lookup asks SQL only when the cache holds nothing fresh for the key, so a fresh
        "gone" entry found afterwards was written meanwhile: the answer from SQL is stale.
        """
        cached = self._cache.get(key)
        return cached is not None and cached[1] is None and cached[0] > now

    def _remember(self, key: str, session: ConsoleSession | None, now: datetime) -> None:
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now + CACHE_FOR, session)


def _session(row: ConsoleSessionRow) -> ConsoleSession:
    return ConsoleSession(
        key=row.session_hash,
        token_hash=row.token_hash,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )
