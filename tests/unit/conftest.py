"""Fast-tier fixtures: a real SQLite database in a temp folder, and batch builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.schemas import KIND_CODES
from ingest.batch import Q_INDEX, QUANTITIES, ReadingBatch
from sigap.runtime import create_schema, make_engine


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh SQLite file with every table created."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}")
    await create_schema(engine)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


def make_batch(
    rows: Sequence[tuple[int, int, dict[str, float]]],
    kinds: dict[int, str] | None = None,
    device_ids: Sequence[str] | None = None,
) -> ReadingBatch:
    """A batch from (device index, ts_ms, {quantity: value}) rows; kind defaults to fire."""
    n = len(rows)
    kinds = kinds or {}
    values = np.full((len(QUANTITIES), n), np.nan)
    for i, (_, _, quantities) in enumerate(rows):
        for name, value in quantities.items():
            values[Q_INDEX[name], i] = value
    devices = [r[0] for r in rows]
    ids = device_ids or [f"dev-{i}" for i in range(max(devices, default=0) + 1)]
    return ReadingBatch(
        device=np.array(devices, np.int32),
        kind=np.array([KIND_CODES[kinds.get(d, "fire")] for d in devices], np.uint8),
        ts_ms=np.array([r[1] for r in rows], np.int64),
        seq=np.full(n, -1, np.int64),
        values=values,
        device_ids=ids,
    )
