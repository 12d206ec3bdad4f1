"""Shared test helpers: where the third-party reference data lives, and SQL databases."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine

from sigap import migrations
from tests import postgres

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"  # third-party reference data, with sources and licences


def reference_data(*parts: str) -> Path:
    """Path into tests/data (see its README); a missing file is an error, never a skip."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"reference data {path} is missing from the repository")
    return path


# In a full run (SIGAP_REQUIRE_SERVICES=1: `make test`, CI) the only skip allowed is one
# whose reason starts with this: a privilege the machine does not give (README, "Tests").
PRIVILEGE_SKIP = "missing privilege:"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In a full run, fail the session on any skip but a missing privilege."""
    if os.environ.get("SIGAP_REQUIRE_SERVICES") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = [] if reporter is None else reporter.stats.get("skipped", [])
    refused = [
        (report.nodeid, _skip_reason(report))
        for report in skipped
        if not _skip_reason(report).startswith(PRIVILEGE_SKIP)
    ]
    if refused and reporter is not None:
        reporter.write_sep("=", "skips refused (SIGAP_REQUIRE_SERVICES=1: every test must run)")
        for nodeid, reason in refused:
            reporter.write_line(f"{nodeid}: {reason}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
