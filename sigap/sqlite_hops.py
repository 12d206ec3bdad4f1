"""SQLite through aiosqlite with one trip to its thread per statement, not four.

aiosqlite runs each sqlite3 call on its own thread and hands the result back through the
event loop. SQLAlchemy's aiosqlite adapter makes four such calls per statement (open a
cursor, execute, fetch, close), and every one waits for a turn of the event loop. Under
ingest load a turn takes about a millisecond, so an alert commit (5 statements, 18 calls
with BEGIN and COMMIT) took 15..50 ms there against 4 ms on an idle loop, and every fire
alert waited for it. `OneTripConnection` gives SQLAlchemy a cursor that does the whole
statement in one call on the thread (execute, fetch every row, close) and answers the
rest from what that call brought back.

The cursor follows the part of aiosqlite's cursor that SQLAlchemy uses (`__aenter__`,
`execute`, `executemany`, `fetchone`, `fetchmany`, `fetchall`, `close`, `description`,
`rowcount`, `lastrowid`, `arraysize`). Rows are always fetched with the statement, so a
server-side cursor holds its whole result in memory (Sigap streams no large result from
SQL). It runs its work through aiosqlite's `Connection._execute` (private; in every release
from 0.20, the oldest pyproject.toml allows); without it, `connect` returns a plain
aiosqlite connection and says so once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_Result = tuple[Any, int, int | None, list[Any]]  # description, rowcount, lastrowid, rows


def _one_statement(connection: aiosqlite.Connection, sql: str, parameters: Any) -> _Result:
    """On aiosqlite's thread: run one statement and bring back everything about it."""
    cursor = connection._conn.cursor()
    try:
        if parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _many(connection: aiosqlite.Connection, sql: str, parameters: Iterable[Any]) -> _Result:
    """On aiosqlite's thread: executemany, and everything about it."""
    cursor = connection._conn.cursor()
    try:
        cursor.executemany(sql, parameters)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


class OneTripCursor:
    """A cursor whose statements each take one trip to aiosqlite's thread."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []
        self._at = 0

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        """Run a statement and keep its rows."""
        connection = self._connection
        result = await connection._execute(_one_statement, connection, sql, parameters)  # type: ignore[no-untyped-call]
        self._take(result)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneTripCursor:
        """Run a statement once per parameter set."""
        connection = self._connection
        result = await connection._execute(_many, connection, sql, parameters)  # type: ignore[no-untyped-call]
        self._take(result)
        return self

    def _take(self, result: _Result) -> None:
        self.description, self.rowcount, self.lastrowid, self._rows = result
        self._at = 0

    async def fetchone(self) -> Any:
        """The next row, or None."""
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        """Up to `size` (arraysize) more rows."""
        end = self._at + (size or self.arraysize)
        rows = self._rows[self._at : end]
        self._at += len(rows)
        return rows

    async def fetchall(self) -> Sequence[Any]:
        """The rows not fetched yet."""
        rows = self._rows[self._at :]
        self._at = len(self._rows)
        return rows

    async def close(self) -> None:
        """Drop the rows (the sqlite3 cursor was closed on the thread already)."""
        self._rows, self._at = [], 0


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors take one trip per statement."""

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        """A cursor (SQLAlchemy enters it with `async with`; no trip to the thread)."""
        return OneTripCursor(self)


_warned = False


def connect(database: str, **kwargs: Any) -> aiosqlite.Connection:
    """An aiosqlite connection to `database` (sqlite3.connect's keywords), one trip per
    statement where this aiosqlite allows it."""
    global _warned

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return connection

    if not hasattr(aiosqlite.Connection, "_execute"):
        if not _warned:
            log.warning("aiosqlite has no Connection._execute: SQL takes 4 trips a statement")
            _warned = True
        plain: aiosqlite.Connection = aiosqlite.connect(database, **kwargs)
        return plain
    connection = OneTripConnection(connector, 64)
    # As SQLAlchemy does: never hold up the exit (before aiosqlite 0.22 the connection
    # was the thread itself).
    thread: Any = getattr(connection, "_thread", connection)
    thread.daemon = True
    return connection
