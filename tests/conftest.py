"""Shared test helpers: where the third-party reference data lives, and SQL databases."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine

import migrations
from tests import postgres

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """Path into ../shared/data, skipping the test with a clear message when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data {path} not found (../shared/data is not beside this clone)")
    return path


def need_service(problem: str) -> NoReturn:
    """Skip for a missing service, or fail when SIGAP_REQUIRE_SERVICES=1 (CI, `make test`)."""
    if os.environ.get("SIGAP_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem} (SIGAP_REQUIRE_SERVICES=1: these tests must run)")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """A PostgreSQL server of our own on a free port, for the whole test session."""
    try:
        server = postgres.start()
    except postgres.PostgresUnavailableError as exc:
        need_service(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest migration, migrated once and copied by each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "head.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        migrations.upgrade(conn)
    engine.dispose()
    return path


@pytest.fixture
async def sql_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    """URL of a fresh database at the newest migration: SQLite, or PostgreSQL when a test
    is parametrised with `postgres.both_backends` (or SIGAP_TEST_DATABASE=postgresql)."""
    backend = getattr(request, "param", os.environ.get("SIGAP_TEST_DATABASE", "sqlite"))
    if backend == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert backend == "postgresql", backend
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    async with server.database() as url:
        yield url
