"""SQLite through aiosqlite in one trip per statement: what SQLAlchemy reads from a cursor
(rows, description, rowcount, lastrowid, errors) is what aiosqlite's own cursor gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column, registry

from sigap import sqlite_hops
from sigap.runtime import make_engine

# Mapped by a registry of its own, not a DeclarativeBase: test_migrations checks that every
# DeclarativeBase subclass is migrated.
_MAPPED = registry()


@_MAPPED.mapped
class _Row:
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    count: Mapped[int] = mapped_column(default=0)


def _row(name: str) -> _Row:
    row = _Row()
    row.name = name
    return row


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hops.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(_MAPPED.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made on aiosqlite's thread, by function name."""
    made: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


async def test_the_engine_s_connections_take_one_trip_per_statement(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_hops.OneTripConnection)
        trips.clear()
        result = await conn.execute(sa.text("SELECT 1 UNION ALL SELECT 2"))
        assert result.all() == [(1,), (2,)]
        assert trips == ["_one_statement"]  # aiosqlite's cursor: cursor, execute, fetchall, close


async def test_the_orm_reads_keys_rowcounts_and_rows(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        rows = [_row(f"n{i}") for i in range(3)]
        session.add_all(rows)
        await session.flush()
        assert sorted(r.id for r in rows) == [1, 2, 3]  # keys came back from the inserts
        rows[1].count = 5
        await session.flush()  # an UPDATE whose rowcount the ORM checks (StaleDataError)
    async with sessions() as session:
        found = (await session.scalars(sa.select(_Row).order_by(_Row.id))).all()
        assert [(r.name, r.count) for r in found] == [("n0", 0), ("n1", 5), ("n2", 0)]
        result = await session.execute(sa.update(_Row).where(_Row.count == 0).values(count=1))
        assert result.rowcount == 2  # type: ignore[attr-defined]
        await session.commit()


async def test_many_rows_at_once_and_streamed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(_Row), [{"name": f"m{i}", "count": i} for i in range(250)])
    async with engine.connect() as conn:
        streamed = await conn.stream(sa.select(_Row.count).order_by(_Row.count))
        seen = [row[0] async for row in streamed]
        assert seen == list(range(250))
        partitions = await conn.stream(sa.select(_Row.count).order_by(_Row.count))
        sizes = [len(part) async for part in partitions.partitions(100)]
        assert sizes == [100, 100, 50]


async def test_errors_are_sqlalchemy_s_and_roll_back(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        session.add(_row("once"))
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            session.add(_row("twice"))
            session.add(_row("once"))
    async with sessions() as session:
        names = (await session.scalars(sa.select(_Row.name))).all()
        assert names == ["once"]  # the failed transaction left nothing behind


async def test_the_cursor_hands_out_each_row_once(tmp_path: Path) -> None:
    connection = await sqlite_hops.connect(str(tmp_path / "c.db"))
    assert isinstance(connection, sqlite_hops.OneTripConnection)
    try:
        cursor = connection.cursor()
        assert await cursor.__aenter__() is cursor
        await cursor.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4")
        assert cursor.description is not None and cursor.description[0][0] == "1"
        assert await cursor.fetchone() == (1,)
        assert await cursor.fetchmany(2) == [(2,), (3,)]
        assert await cursor.fetchall() == [(4,)]
        assert await cursor.fetchone() is None and await cursor.fetchall() == []
        await cursor.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)")
        await cursor.executemany("INSERT INTO t (y) VALUES (?)", [("a",), ("b",)])
        assert cursor.rowcount == 2 and cursor.description is None
        await cursor.execute("INSERT INTO t (y) VALUES (?)", ("c",))
        assert cursor.lastrowid == 3
        with pytest.raises(aiosqlite.OperationalError):
            await cursor.execute("SELECT * FROM missing")
        await cursor.close()
    finally:
        await connection.close()


async def test_sessions_of_the_runtime_work_as_before(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The shared fixture's engine (every SQL test of the suite) is a one-trip engine too.
    async with sessions() as session:
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        if conn.dialect.name == "sqlite":
            assert isinstance(raw.driver_connection, sqlite_hops.OneTripConnection)
        assert (await session.execute(sa.text("SELECT 41 + 1"))).scalar_one() == 42
