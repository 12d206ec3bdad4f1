"""The rejected-messages store: every refused message, with topic, bounded raw bytes and reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, LargeBinary, MetaData, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract.sqltypes import NAMING_CONVENTION, UTCDateTime
from contract.timeutil import from_ms, now_ms

# Enough of a payload to see what was wrong with it, without letting a flood fill the disk.
RAW_KEEP_BYTES = 4096


class Base(DeclarativeBase):
    """Declarative base for ingest's own tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RejectedRow(Base):
    """One rejected message (or one rejected reading of a gateway batch)."""

    __tablename__ = "rejected_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    topic: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(String(1000))
    device_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    size: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message ingest refused, and why."""

    received_at: datetime
    topic: str
    reason: str
    detail: str
    raw: bytes
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A stored rejection, as listed by the API."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    device_id: str | None
    size: int
    raw: bytes  # at most RAW_KEEP_BYTES
    truncated: bool


class RejectedStore:
    """Rejected messages in SQL, bounded by count and age (oldest dropped first).

    Besides the periodic `prune`, `add_many` prunes by itself once a tenth of `keep` has
    been added since the last prune, so a flood of garbage cannot fill the disk between
    two runs of the job.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keep: int = 10_000,
        max_age: timedelta = timedelta(days=7),
    ) -> None:
        self._sessions = sessions
        self.keep = keep
        self.max_age = max_age
        self._added_since_prune = 0

    async def add_many(self, items: Sequence[Rejected]) -> None:
        """Store rejections in one transaction."""
        if not items:
            return
        async with self._sessions() as session:
            session.add_all(
                RejectedRow(
                    received_at=item.received_at,
                    topic=item.topic[:512],
                    reason=item.reason,
                    detail=item.detail[:1000],
                    device_id=item.device_id[:200] if item.device_id else None,
                    size=len(item.raw),
                    raw=item.raw[:RAW_KEEP_BYTES],
                )
                for item in items
            )
            await session.commit()
        self._added_since_prune += len(items)
        if self._added_since_prune >= max(100, self.keep // 10):
            await self.prune(items[-1].received_at)

    async def find(
        self, *, reason: str | None = None, device_id: str | None = None, limit: int = 100
    ) -> list[RejectedRecord]:
        """Newest first, optionally filtered."""
        query = select(RejectedRow).order_by(RejectedRow.id.desc()).limit(limit)
        if reason:
            query = query.where(RejectedRow.reason == reason)
        if device_id:
            query = query.where(RejectedRow.device_id == device_id)
        async with self._sessions() as session:
            return [
                RejectedRecord(
                    id=row.id,
                    received_at=row.received_at,
                    topic=row.topic,
                    reason=row.reason,
                    detail=row.detail,
                    device_id=row.device_id,
                    size=row.size,
                    raw=row.raw,
                    truncated=row.size > len(row.raw),
                )
                for row in await session.scalars(query)
            ]

    async def count(self) -> int:
        """How many rejections are stored."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count(RejectedRow.id))) or 0)

    async def prune(self, now: datetime | None = None) -> int:
        """Drop rejections beyond `keep` or older than `max_age`; returns how many."""
        self._added_since_prune = 0
        cutoff = (now or from_ms(now_ms())) - self.max_age
        async with self._sessions() as session:
            newest = await session.scalar(select(func.max(RejectedRow.id)))
            if newest is None:
                return 0
            result = await session.execute(
                delete(RejectedRow).where(
                    (RejectedRow.id <= newest - self.keep) | (RejectedRow.received_at < cutoff)
                )
            )
            await session.commit()
            return int(getattr(result, "rowcount", 0) or 0)
