"""Register the simulated fleet with Sigap's device registry (POST /api/v1/devices)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.errors import RegistrationError

log = logging.getLogger(__name__)

DEVICES_PATH = "/api/v1/devices"
# Gateways and a starting API answer these while they come up: worth waiting for.
_RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RegistrationResult:
    """How many devices were created, and how many the registry already had."""

    created: int
    existing: int

    @property
    def registered(self) -> int:
        """Devices the registry now knows about."""
        return self.created + self.existing


class _Cancelled(Exception):
    pass


def _post_one(
    client: httpx.Client,
    url: str,
    body: Mapping[str, Any],
    wait_s: float,
    retry_delay_s: float,
    stop: threading.Event | None,
) -> bool:
    """POST one device; True if created, False if it already existed."""
    deadline: float | None = None
    while True:
        if stop is not None and stop.is_set():
            raise _Cancelled
        try:
            response = client.post(DEVICES_PATH, json=dict(body))
        except httpx.TransportError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            status: int | None = None
        else:
            if response.status_code == 201:
                return True
            if response.status_code == 409:
                return False
            if response.status_code not in _RETRY_STATUSES:
                hint = ""
                if response.status_code in (401, 403):
                    hint = " (is the API token set and allowed to register devices?)"
                raise RegistrationError(
                    url,
                    f"device {body.get('id')!r} refused{hint}",
                    status=response.status_code,
                    body=response.text[:500],
                )
            reason, status = f"HTTP {response.status_code}", response.status_code
        # The API may still be starting (e.g. `make demo` starts everything at once).
        now = time.monotonic()
        if deadline is None:
            deadline = now + wait_s
        if now >= deadline:
            raise RegistrationError(url, f"gave up after {wait_s:.0f}s: {reason}", status=status)
        if stop is not None:
            stop.wait(retry_delay_s)
        else:
            time.sleep(retry_delay_s)


def register_fleet(
    devices: Sequence[Mapping[str, Any]],
    api_url: str,
    token: str | None = None,
    *,
    wait_s: float = 30.0,
    workers: int = 8,
    timeout_s: float = 10.0,
    retry_delay_s: float = 0.5,
    stop: threading.Event | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RegistrationResult:
    """Register every device; 409 (already registered) counts as success."""
    base = api_url.rstrip("/")
    url = base + DEVICES_PATH
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    created = existing = 0
    if not devices:
        return RegistrationResult(0, 0)
    with httpx.Client(
        base_url=base,
        headers=headers,
        timeout=timeout_s,
        transport=transport,
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
    ) as client:
        try:
            # The first device alone: it absorbs the wait for a starting API, so the pool
            # below does not hammer a port that is not listening yet.
            first = _post_one(client, url, devices[0], wait_s, retry_delay_s, stop)
            created, existing = (1, 0) if first else (0, 1)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-reg") as pool:
                futures = [
                    pool.submit(_post_one, client, url, body, wait_s, retry_delay_s, stop)
                    for body in devices[1:]
                ]
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    if error is not None:
                        for pending in futures:
                            pending.cancel()
                        raise error
                for future in futures:
                    if future.result():
                        created += 1
                    else:
                        existing += 1
        except _Cancelled:
            log.warning("registration interrupted after %d devices", created + existing)
            return RegistrationResult(created, existing)
    log.info(
        "registered %d devices at %s (%d new, %d already known) in %.1fs",
        created + existing,
        url,
        created,
        existing,
        time.monotonic() - started,
    )
    return RegistrationResult(created, existing)
