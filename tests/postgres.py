"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl in a temp dir, on a free port.

No system service is used or needed (CI has no systemd): the server is Debian's
`postgresql` binaries run as a child of the tests, and it is gone when they end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from sigap import migrations
from sigap.devstack import free_port

USER = "sigap"
TEMPLATE = "sigap_head"  # migrated once per session; each test copies it
# Test ids for the two backends the SQL stores support.
BACKENDS = ("sqlite", "postgresql")
# Runs a module's tests on both: `pytestmark = both_backends`; their `sessions` follow.
both_backends = pytest.mark.parametrize("sql_url", BACKENDS, indirect=True)
_INSTALL = "install it with: apt-get install postgresql (or run `make setup`)"


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def bin_dir() -> Path:
    """The folder with initdb and pg_ctl; Debian keeps them out of PATH, per version."""
    candidates: list[Path] = []
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).resolve().parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: _version(p.parent.name), reverse=True)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailableError(
        f"PostgreSQL server binaries (initdb, pg_ctl) not found; {_INSTALL}"
    )


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


@dataclass
class PostgresServer:
    """A running server that trusts local TCP connections as USER."""

    bin_dir: Path
    root: Path
    port: int
    run_as: list[str]
    _template_ready: bool = field(default=False, repr=False)

    @property
    def data(self) -> Path:
        """The cluster's data folder."""
        return self.root / "data"

    def url(self, database: str) -> str:
        """SQLAlchemy async URL of one of the server's databases."""
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    @asynccontextmanager
    async def database(self, *, migrated: bool = True) -> AsyncIterator[str]:
        """A new database (at the newest migration, or empty), dropped afterwards; its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        admin = create_async_engine(
            self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
        )
        try:
            async with admin.connect() as conn:
                if migrated and not self._template_ready:
                    await conn.execute(text(f"CREATE DATABASE {TEMPLATE}"))
                    await migrations.upgrade_url(self.url(TEMPLATE))
                    self._template_ready = True
                # Copying a migrated template is much faster than migrating each database.
                template = TEMPLATE if migrated else "template0"
                await conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
            yield self.url(name)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            await admin.dispose()

    def stop(self) -> None:
        """Stop the server and delete its files."""
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server log, for error messages."""
        with contextlib.suppress(OSError):
            log = (self.root / "postgres.log").read_text(errors="replace")
            return "\n".join(log.splitlines()[-lines:])
        return ""

    def _run(self, *argv: str) -> None:
        subprocess.run(
            [*self.run_as, *argv],
            cwd=self.root,  # the server's account may not be able to read ours
            check=True,
            capture_output=True,
            timeout=120,
        )


def start() -> PostgresServer:
    """initdb a cluster in a new temp dir and start it on a free port (as a non-root user)."""
    folder = bin_dir()
    root = Path(tempfile.mkdtemp(prefix="sigap-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: hand the folder to an unprivileged account.
        account = _account()
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = [runuser, "-u", account.pw_name, "--"]
    server = PostgresServer(folder, root, free_port(), run_as)
    options = (
        f"-h 127.0.0.1 -p {server.port} -k {root} "
        # Test data is thrown away: durability only costs time here.
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        server._run(
            str(folder / "initdb"),
            "-D",
            str(server.data),
            "-U",
            USER,
            "--auth=trust",
            # C collation: strings sort by code point, as on SQLite.
            "--no-locale",
            "--encoding=UTF8",
            "--no-sync",
        )
        server._run(
            str(folder / "pg_ctl"),
            "-D",
            str(server.data),
            "-l",
            str(root / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
    except subprocess.CalledProcessError as exc:
        output = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(
            errors="replace"
        )
        tail = server.log_tail()
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {output}\n{tail}") from None
    return server


def _account() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailableError("running as root with no postgres or nobody account")
