"""The API tokens table (hashes only; a token is shown once, when issued)."""

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
