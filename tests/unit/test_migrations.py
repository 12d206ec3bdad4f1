"""Migrations: they build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, create_engine, inspect, pool, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase
from typer.testing import CliRunner

from sigap import migrations
from sigap.cli import app
from tests import postgres
from tests.postgres import both_backends

# Packages that may hold SQL tables (others are imported only if these import them).
STATEFUL_PACKAGES = ("devices", "dispatch", "ingest", "routes", "stations", "provisioning")


async def _on(url: str, work: str) -> Any:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(getattr(migrations, work))
    finally:
        await engine.dispose()


def test_every_table_module_is_migrated() -> None:
    # A stage with its own declarative base must be listed, or its tables are never made.
    for package in STATEFUL_PACKAGES:
        if importlib.util.find_spec(package) is None:
            continue
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            importlib.import_module(module.name)
    bases: list[type[DeclarativeBase]] = list(DeclarativeBase.__subclasses__())
    for base in bases:
        bases += base.__subclasses__()
    missing = {
        f"{base.__module__}.{base.__qualname__}"
        for base in bases
        if not any(base.metadata is known for known in migrations.METADATAS)
    }
    assert not missing, f"add their metadata to migrations.METADATAS: {sorted(missing)}"


@both_backends
async def test_tables_and_migrations_agree(sql_url: str) -> None:
    diffs = await _on(sql_url, "differences")
    assert diffs == [], (
        "the table modules and the migrations differ; write a migration with "
        "`sigap db revision -m 'what changed'` and review it"
    )


@both_backends
async def test_a_change_without_a_migration_is_noticed(sql_url: str) -> None:
    engine = create_async_engine(sql_url, poolclass=pool.NullPool)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE stations ADD COLUMN radio_channel INTEGER"))
    await engine.dispose()
    diffs = await _on(sql_url, "differences")
    assert [(d[0], d[2], d[3].name) for d in diffs] == [
        ("remove_column", "stations", "radio_channel")
    ]


@both_backends
async def test_upgrade_reaches_head_and_repeats_harmlessly(sql_url: str) -> None:
    await migrations.upgrade_url(sql_url)  # the fixture's database is at head already
    assert await migrations.current_url(sql_url) == (migrations.head(),)


async def test_instances_starting_together_migrate_once(
    postgres_server: postgres.PostgresServer,
) -> None:
    async with postgres_server.database(migrated=False) as url:
        await asyncio.gather(*(migrations.upgrade_url(url) for _ in range(3)))
        assert await migrations.current_url(url) == (migrations.head(),)
        assert await _on(url, "differences") == []


async def test_upgrade_works_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini, no migrations/ folder here
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    await migrations.upgrade_url(url)
    assert await migrations.current_url(url) == (migrations.head(),)


def _unversioned_baseline(path: Path) -> Connection:
    """A database as the start-up `create_all` of before migrations left it."""
    conn = create_engine(f"sqlite:///{path}", poolclass=pool.NullPool).connect()
    command.upgrade(migrations.config(conn), migrations.BASELINE)
    conn.execute(text(f"DROP TABLE {migrations.VERSION_TABLE}"))
    conn.execute(
        text(
            "INSERT INTO stations (id, kind, name, lat, lon, district, created_at) "
            "VALUES ('pos-1', 'fire_station', 'Pos 1', -2.5, 112.9, '', "
            "'2026-01-01 00:00:00')"
        )
    )
    conn.commit()
    return conn


def test_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    with _unversioned_baseline(tmp_path / "old.sqlite3") as conn:
        migrations.upgrade(conn)
        conn.commit()
        assert migrations.current(conn) == (migrations.head(),)
        assert conn.scalar(text("SELECT name FROM stations")) == "Pos 1"  # data kept


def test_database_from_before_migrations_that_differs_is_refused(tmp_path: Path) -> None:
    with _unversioned_baseline(tmp_path / "old.sqlite3") as conn:
        conn.execute(text("DROP TABLE stations"))
        conn.execute(text("ALTER TABLE devices ADD COLUMN legacy_flag INTEGER"))
        conn.commit()
        with pytest.raises(migrations.SchemaError) as caught:
            migrations.upgrade(conn)
        conn.rollback()
        message = str(caught.value)
        assert "table stations is missing" in message
        assert "devices has unexpected legacy_flag" in message
        assert "sigap db upgrade" in message  # says what to do
        assert migrations.current(conn) == ()  # left as it was
        assert "stations" not in inspect(conn).get_table_names()


def test_downgrade_to_nothing_and_up_again(tmp_path: Path) -> None:
    with create_engine(
        f"sqlite:///{tmp_path / 'db.sqlite3'}", poolclass=pool.NullPool
    ).connect() as conn:
        migrations.upgrade(conn)
        command.downgrade(migrations.config(conn), "base")
        assert set(inspect(conn).get_table_names()) <= {migrations.VERSION_TABLE}
        migrations.upgrade(conn)
        conn.commit()
        assert migrations.current(conn) == (migrations.head(),)


def test_db_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"SIGAP_DATA_DIR": str(tmp_path / "var"), "SIGAP_DATABASE_URL": ""}
    before = runner.invoke(app, ["db", "current"], env=env)
    assert before.exit_code == 0, before.output
    assert "not migrated yet" in before.output
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    after = runner.invoke(app, ["db", "current"], env=env)
    assert f"current:  {migrations.head()}" in after.output
    assert "sigap db upgrade" not in after.output
