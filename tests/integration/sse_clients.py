"""A wall of consoles in its own process: N clients on /api/v1/alerts/stream at once.

Run by tests/integration/test_sse_load.py (a separate process, so that parsing N streams
does not share a GIL with the test's /healthz timings):

    python -m tests.integration.sse_clients API TOKEN CLIENTS [LAST_EVENT_ID]

It opens every stream, prints `ready` once each has its first chunk (the server sends one
as soon as the stream is subscribed) or has failed, then reads the number of events to
expect from stdin and prints one JSON line: the status codes seen, and how many clients
got every event id from 1 to that number within the time limit.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from typing import Any

import httpx
import orjson

LIMIT_S = 90.0  # a client still short of its events by then is counted incomplete


class Client:
    """One stream: its status, and the event ids it has seen."""

    def __init__(self) -> None:
        self.status = 0
        self.ids: set[int] = set()
        self.subscribed = asyncio.Event()
        self.changed = asyncio.Event()
        self.error = ""


async def _read(http: httpx.AsyncClient, url: str, headers: dict[str, str], c: Client) -> None:
    try:
        async with http.stream("GET", url, headers=headers) as response:
            c.status = response.status_code
            if response.status_code != 200:
                return
            async for line in response.aiter_lines():
                c.subscribed.set()
                if line.startswith("id:"):
                    c.ids.add(int(line[3:].strip()))
                    c.changed.set()
    except httpx.HTTPError as exc:
        c.error = type(exc).__name__
    finally:
        c.subscribed.set()  # ended or failed: nothing more to wait for
        c.changed.set()


async def _complete(c: Client, expected: int) -> bool:
    while len(c.ids) < expected:
        if c.status not in (0, 200) or c.error:
            return False
        c.changed.clear()
        await c.changed.wait()
    return set(range(1, expected + 1)) <= c.ids


async def main(api: str, token: str, clients: int, last_event_id: str | None) -> dict[str, Any]:
    """Run the wall; returns what was seen."""
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        wall = [Client() for _ in range(clients)]
        url = f"{api}/api/v1/alerts/stream"
        readers = [asyncio.create_task(_read(http, url, headers, c)) for c in wall]
        await asyncio.gather(*(c.subscribed.wait() for c in wall))
        print("ready", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        expected = int(line)
        done = await asyncio.gather(
            *(asyncio.wait_for(_complete(c, expected), LIMIT_S) for c in wall),
            return_exceptions=True,
        )
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return {
        "statuses": dict(Counter(str(c.status) for c in wall)),
        "errors": dict(Counter(c.error for c in wall if c.error)),
        "complete": sum(result is True for result in done),
        "fewest": min(len(c.ids) for c in wall),
    }


if __name__ == "__main__":
    api_, token_, clients_ = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resume = sys.argv[4] if len(sys.argv) > 4 else None
    print(orjson.dumps(asyncio.run(main(api_, token_, clients_, resume))).decode(), flush=True)
