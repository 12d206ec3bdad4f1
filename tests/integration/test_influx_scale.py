"""The InfluxDB the repo configures takes a fleet larger than 1.x's default limits."""

from __future__ import annotations

import uuid

import httpx
import pytest

from sigap import devstack
from tests.integration.conftest import count_readings

pytestmark = pytest.mark.integration

# InfluxDB 1.x's default max-values-per-tag; every device is one value of `device_id`.
DEFAULT_LIMIT = 100_000


def test_more_devices_than_the_default_tag_limit_are_all_stored(
    influxd: devstack.Service,
) -> None:
    url = f"http://127.0.0.1:{influxd.port}"
    db = "scale" + uuid.uuid4().hex[:8]
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
    try:
        _fill(url, db)
    finally:  # the session's influxd serves the other tests: give the memory back
        httpx.post(f"{url}/query", params={"q": f'DROP DATABASE "{db}"'})


def _fill(url: str, db: str) -> None:
    devices = DEFAULT_LIMIT + 500
    # The limit is checked against the values already indexed: fill up to it, then more.
    for first, last in ((0, DEFAULT_LIMIT), (DEFAULT_LIMIT, devices)):
        lines = "\n".join(
            f"readings,device_id=d{i:06d},kind=fire seq={i}i,temp_c=30.5 1790000000000"
            for i in range(first, last)
        )
        response = httpx.post(
            f"{url}/write", params={"db": db, "precision": "ms"}, content=lines, timeout=120
        )
        # With 1.x's defaults: 400 "partial write: max-values-per-tag limit exceeded".
        assert response.status_code == 204, response.text[:300]
    assert count_readings(url, db) == devices
