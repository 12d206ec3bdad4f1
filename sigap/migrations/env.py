"""Alembic's environment: the stages' tables, on the connection (or URL) Sigap hands over."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from sigap.migrations import context_options

config = context.config


def _url() -> str:
    url: str | None = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url is None:
        from sigap.settings import Settings  # only when run without Sigap handing a URL

        url = Settings().sql_url
    return url


def run_offline() -> None:
    """Write the SQL instead of running it (`--sql`)."""
    context.configure(
        url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"}, **context_options()
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    """Run the migrations on a (sync) connection."""
    context.configure(connection=connection, **context_options())
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    """Run the migrations on an async engine made from the URL."""
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


connection: Connection | None = config.attributes.get("connection")
if context.is_offline_mode():
    run_offline()
elif connection is not None:
    run_on(connection)  # Sigap's own path: the caller owns the connection and transaction
else:
    asyncio.run(run_async())
