"""Schema migrations (Alembic) for every stage's tables: run at start and by `sigap db`."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, create_engine, inspect, make_url, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contract.sqltypes import UTCDateTime
from dashboard_api.access import tables as access_tables
from devices import tables as device_tables
from dispatch import tables as dispatch_tables
from dispatch import webhooks as webhook_tables
from dispatch.stations import tables as station_tables
from ingest import rejected as rejected_tables
from pickup_routes import tables as route_tables

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# The schema is the union of the stages' tables; each stage keeps its own MetaData.
METADATAS: tuple[MetaData, ...] = (
    device_tables.Base.metadata,
    dispatch_tables.Base.metadata,
    rejected_tables.Base.metadata,
    webhook_tables.Base.metadata,
    station_tables.Base.metadata,
    route_tables.Base.metadata,
    access_tables.Base.metadata,
)
# What a database made by the start-up `create_all` of before migrations corresponds to.
BASELINE = "0001"
VERSION_TABLE = "alembic_version"
# Any constant will do: instances starting together take this lock, so one migrates and
# the others then find the schema at head instead of racing to create the same tables.
_PG_LOCK_KEY = 0x51_6A_70_01


class SchemaError(RuntimeError):
    """The database cannot be brought to the current schema automatically."""


def config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic's configuration, built in code so it works from any working directory."""
    cfg = Config(attributes={"connection": connection, "url": url})
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    # Numbered files (0001_initial_schema.py) list in the order they run.
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return cfg


def context_options() -> dict[str, Any]:
    """Options for every migration context: running, autogenerate and comparing alike."""
    return {
        "target_metadata": list(METADATAS),
        "version_table": VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        "render_as_batch": True,
        "compare_type": True,
        "compare_server_default": _compare_server_default,
        "render_item": _render_item,
    }


def _compare_server_default(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    # SQLite reflects an empty-string default as ('') and alembic's unquoting misses it, so
    # it would be reported as changed on every run. None leaves the decision to alembic.
    if _literal(inspected_default) == _literal(rendered_metadata_default):
        return False
    return None


def _literal(default: str | None) -> str | None:
    """A default as SQL text, with enclosing parentheses and quotes removed."""
    if default is None:
        return None
    value = default.strip()
    while value.startswith("(") and value.endswith(")"):
        value = value[1:-1].strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1].replace("''", "'")
    return value


def _render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | bool:
    # A migration describes the database, and UTCDateTime is a timestamp with time zone
    # there; rendering its impl keeps old migrations working if the Python type changes.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def head() -> str | None:
    """The newest revision."""
    return ScriptDirectory.from_config(config()).get_current_head()


def current(connection: Connection) -> tuple[str, ...]:
    """The database's revisions (empty when it has never been migrated)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_heads()


def differences(connection: Connection) -> list[Any]:
    """What autogenerate would write for this database: empty when it matches the tables."""
    context = MigrationContext.configure(connection, opts=context_options())
    # Alembic takes a sequence of MetaData here as for target_metadata; the hint says one.
    found: list[Any] = compare_metadata(context, cast(MetaData, list(METADATAS)))
    return found


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate to `revision`, first adopting a database made before migrations existed."""
    if connection.dialect.name == "postgresql":
        # Released when the caller's transaction ends, i.e. after the upgrade commits.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    cfg = config(connection)
    if not current(connection):
        _adopt_unversioned(connection, cfg)
    command.upgrade(cfg, revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the engine's database to `revision` in one transaction."""
    async with engine.begin() as conn:
        await conn.run_sync(upgrade, revision)


async def upgrade_url(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        await upgrade_engine(engine, revision)
    finally:
        await engine.dispose()


async def current_url(url: str) -> tuple[str, ...]:
    """The revisions of the database at `url`."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(current)
    finally:
        await engine.dispose()


def revision(message: str) -> Path:
    """Write a new revision with what the tables have and the migrations lack."""
    # Autogenerate compares against a scratch database at head, not a live one.
    engine = create_engine("sqlite://", poolclass=pool.StaticPool)
    try:
        with engine.begin() as conn:
            upgrade(conn)
            cfg = config(conn)
            latest = ScriptDirectory.from_config(cfg).get_current_head()
            number = 1 if latest is None else int(latest) + 1 if latest.isdigit() else None
            script = command.revision(
                cfg,
                message,
                autogenerate=True,
                rev_id=None if number is None else f"{number:04d}",
            )
    finally:
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    _tidy(path)
    return path


def _tidy(path: Path) -> None:
    """Lint-fix and format a generated revision when ruff is at hand (a dev install)."""
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        return
    for args in (["format"], ["check", "--fix", "--exit-zero"], ["format"]):
        subprocess.run([ruff, *args, "--quiet", str(path)], check=False, capture_output=True)


def redact(url: str) -> str:
    """A database URL fit for logs (no password)."""
    return make_url(url).render_as_string(hide_password=True)


def _adopt_unversioned(connection: Connection, cfg: Config) -> None:
    """Stamp a database made by the old start-up `create_all` at BASELINE, if it matches."""
    found = _columns(connection)
    ours = {table for metadata in METADATAS for table in metadata.tables}
    if not found.keys() & ours:
        return  # a new (or someone else's) database: migrate from scratch
    expected = baseline_columns()
    problems: list[str] = []
    for table, columns in sorted(expected.items()):
        have = found.get(table)
        if have is None:
            problems.append(f"table {table} is missing")
            continue
        if missing := sorted(columns - have):
            problems.append(f"{table} lacks {', '.join(missing)}")
        if extra := sorted(have - columns):
            problems.append(f"{table} has unexpected {', '.join(extra)}")
    if problems:
        where = connection.engine.url.render_as_string(hide_password=True)
        raise SchemaError(
            f"{where} has Sigap tables but no alembic_version table (it was created "
            "before migrations), and they differ from the initial migration "
            f"{BASELINE}: {'; '.join(problems)}. Sigap will not guess how to convert it. "
            "If its data can go (a development database), delete the SQLite file or drop "
            "its tables and start again; otherwise make the tables match "
            f"sigap/migrations/versions/{BASELINE}_*.py by hand and run `sigap db upgrade`."
        )
    log.warning("schema made before migrations matches revision %s: stamping it", BASELINE)
    command.stamp(cfg, BASELINE)


def baseline_columns() -> dict[str, set[str]]:
    """Each table's columns as the initial migration creates them."""
    engine = create_engine("sqlite://", poolclass=pool.StaticPool)
    try:
        with engine.begin() as conn:
            command.upgrade(config(conn), BASELINE)
            return _columns(conn)
    finally:
        engine.dispose()


def _columns(connection: Connection) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
        if table != VERSION_TABLE
    }
