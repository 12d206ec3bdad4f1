"""Bearer tokens with a role: issued once, stored hashed, checked on every API request."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.timeutil import from_ms, now_ms
from dashboard_api.access.tables import ApiTokenRow, ConsoleSessionRow

TOKEN_PREFIX = "sigap_"
ADMIN_TOKEN_NAME = "SIGAP_ADMIN_TOKEN"
# A token checked recently is trusted this long without asking SQL again; a revocation
# therefore takes effect within this time on every instance.
_CACHE_MS = 5_000


class Role(enum.StrEnum):
    """What a credential may change; every role may read."""

    admin = "admin"  # everything, including tokens and webhooks
    technician = "technician"  # devices and gateways, their MQTT credentials
    dispatcher = "dispatcher"  # fire alerts and incidents, fire stations
    crew = "crew"  # pickup routes and their stops


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name and role."""

    name: str
    role: Role
    token_id: int | None  # None for SIGAP_ADMIN_TOKEN

    def may(self, *roles: Role) -> bool:
        """True when this principal holds one of roles (admin holds them all)."""
        return self.role is Role.admin or self.role in roles


class TokenCreate(BaseModel):
    """A token to issue."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="who or what will use it")
    role: Role


class TokenPublic(BaseModel):
    """An issued token, without its secret."""

    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class TokenIssued(TokenPublic):
    """The answer to issuing a token: the only time its secret is shown."""

    token: str


_ADMIN = Principal(ADMIN_TOKEN_NAME, Role.admin, None)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Issued tokens in SQL."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def issue(self, create: TokenCreate, by: str) -> TokenIssued:
        """Create a token; its secret is in the answer and nowhere else."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            name=create.name,
            role=create.role.value,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 4],
            created_at=from_ms(now_ms()),
            created_by=by,
        )
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
            await session.refresh(row)
        return TokenIssued(token=token, **_public(row).model_dump())

    async def list(self) -> list[TokenPublic]:
        """Every token, newest first, revoked ones included."""
        async with self._sessions() as session:
            rows = await session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id.desc()))
            return [_public(row) for row in rows]

    async def revoke(self, token_id: int) -> TokenPublic | None:
        """Revoke a token (idempotent) and end its console sessions; None when unknown."""
        async with self._sessions() as session:
            await session.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=from_ms(now_ms()))
            )
            row = await session.get(ApiTokenRow, token_id)
            if row is not None:
                # They would fail on their next use anyway (the token is checked each
                # time); deleting them now leaves no dead sessions behind.
                await session.execute(
                    delete(ConsoleSessionRow).where(ConsoleSessionRow.token_hash == row.token_hash)
                )
            await session.commit()
            return None if row is None else _public(row)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The SQL sessions it uses (the console's session store shares the database)."""
        return self._sessions

    async def find(self, token: str) -> Principal | None:
        """The principal of a valid (not revoked) token."""
        return await self.find_hash(hash_token(token))

    async def find_hash(self, token_hash: str) -> Principal | None:
        """The principal of a valid (not revoked) token, from its stored hash."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash)
            )
        if row is None or row.revoked_at is not None:
            return None
        return Principal(row.name, Role(row.role), row.id)


class Authenticator:
    """Checks bearer tokens: SIGAP_ADMIN_TOKEN, then the issued ones (cached briefly)."""

    def __init__(self, store: TokenStore, admin_token: str | None = None) -> None:
        self.store = store
        self._admin = admin_token
        self._admin_hash = hash_token(admin_token) if admin_token else None
        # Keyed by the token's hash, so that no secret stays in memory.
        self._cache: dict[str, tuple[int, Principal | None]] = {}

    async def principal(self, token: str) -> Principal | None:
        """Who holds this token, or None."""
        if self._admin and hmac.compare_digest(token.encode(), self._admin.encode()):
            return _ADMIN
        return await self._issued(hash_token(token))

    async def principal_by_hash(self, token_hash: str) -> Principal | None:
        """Who holds the token with this hash (a console session keeps only the hash)."""
        if self._admin_hash and hmac.compare_digest(token_hash, self._admin_hash):
            return _ADMIN
        return await self._issued(token_hash)

    async def _issued(self, token_hash: str) -> Principal | None:
        now = now_ms()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self.store.find_hash(token_hash)
        if len(self._cache) > 10_000:  # bounded: a flood of made-up tokens cannot grow it
            self._cache.clear()
        self._cache[token_hash] = (now + _CACHE_MS, found)
        return found

    def forget(self) -> None:
        """Drop cached answers (after a revocation in this process)."""
        self._cache.clear()


def _public(row: ApiTokenRow) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        prefix=row.prefix,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )
