"""API tokens and console sessions, stored as hashes (a token is shown once, when issued)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract.sqltypes import NAMING_CONVENTION, UTCDateTime


class Base(DeclarativeBase):
    """Declarative base for the access tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiTokenRow(Base):
    """One issued bearer token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    # SHA-256 of the token: tokens are 256-bit random, so a fast hash is enough (no
    # password to stretch), and lookups stay one indexed query.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # the first characters, to recognise it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ConsoleSessionRow(Base):
    """One browser console sign-in (dashboard_api/console/sessions.py)."""

    __tablename__ = "console_sessions"

    # SHA-256 of the cookie's secret: someone who reads the table cannot use a session.
    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # SHA-256 of the API token it was opened with: the principal is found again through it
    # on every use, so a revoked token ends its sessions.
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
