"""Ingest's own CPU per reading, in process: decode, batch building and line protocol.

The packets of `bench.ingest_ceiling` (gateway batches of 50 readings from its fleet, or
single readings) go through `Ingestor.handle` and `Ingestor.flush`, whose batch handler
encodes each batch to line protocol as the InfluxDB writer does; no broker, no InfluxDB,
no rules. Each stage is timed per reading, best of --repeat, next to orjson parsing the
same payloads in the same run (the baseline: the ratios hold on a busy machine where the
microseconds do not).
Usage: .venv/bin/python -m bench.ingest_path [--singles] [--messages 4000] [--repeat 5]
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
from collections.abc import Collection

import orjson

from bench.ingest_ceiling import _is_bin, _reading
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from ingest.batch import ReadingBatch
from ingest.influx import LineEncoder
from ingest.rejected import Rejected
from ingest.service import Ingestor

GATEWAYS, PER_GATEWAY = 40, 50


class _NoRejections:
    """Every bench reading is valid; a rejection would be a bench bug."""

    async def add_many(self, items: list[Rejected]) -> None:
        raise AssertionError(f"unexpected rejections: {items[:1]}")


async def _no_devices(ids: Collection[str]) -> list[DeviceCreate]:
    return []


def _fleet(
    now_ms: int, messages: int, singles: bool
) -> tuple[DeviceDirectory, list[tuple[str, bytes]]]:
    directory = DeviceDirectory()
    members: list[list[str]] = []
    for g in range(GATEWAYS):
        ids = []
        for i in range(PER_GATEWAY):
            index = g * PER_GATEWAY + i
            body: dict[str, object] = {
                "id": f"dev-{index:05d}",
                "kind": "bin" if _is_bin(index) else "fire",
                "lat": -2.54,
                "lon": 112.95,
            }
            if not singles:
                body["gateway_id"] = f"gw-{g}"
            if body["kind"] == "bin":
                body["depth_mm"] = 1200.0
            directory.upsert(DeviceCreate.model_validate(body))
            ids.append(str(body["id"]))
        members.append(ids)
    rng = random.Random(1)
    packets: list[tuple[str, bytes]] = []
    for j in range(messages):
        g, round_ = j % GATEWAYS, j // GATEWAYS
        ts = now_ms - 60_000 + round_
        if singles:
            index = j % (GATEWAYS * PER_GATEWAY)
            device = f"dev-{index:05d}"
            payload = "{" + _reading(rng, index, round_, ts) + "}"
            packets.append((f"sigap/devices/{device}/up", payload.encode()))
            continue
        items = ",".join(
            '{"device_id":"' + device + '",' + _reading(rng, g * PER_GATEWAY + i, round_, ts) + "}"
            for i, device in enumerate(members[g])
        )
        packets.append((f"sigap/gateways/gw-{g}/up", ('{"readings":[' + items + "]}").encode()))
    return directory, packets


async def _run(args: argparse.Namespace) -> dict[str, object]:
    now_ms = int(time.time() * 1000)
    directory, packets = _fleet(now_ms, args.messages, args.singles)
    readings = len(packets) * (1 if args.singles else PER_GATEWAY)
    encoder = LineEncoder("readings")
    encoding = [0.0]

    async def encode(batch: ReadingBatch) -> None:
        started = time.perf_counter()
        encoder.encode(batch)
        encoding[0] += time.perf_counter() - started

    ingestor = Ingestor(directory, _no_devices, _NoRejections(), encode)  # type: ignore[arg-type]
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        encoding[0] = handling = flushing = 0.0
        gc.collect()
        gc.disable()  # collector pauses are the process's business, not this stage's
        try:
            for topic, payload in packets:
                started = time.perf_counter()
                ingestor.handle(topic, payload)
                handling += time.perf_counter() - started
                if ingestor.staged >= ingestor.batch_size:
                    started = time.perf_counter()
                    await ingestor.flush()
                    flushing += time.perf_counter() - started
            started = time.perf_counter()
            await ingestor.flush()
            flushing += time.perf_counter() - started
        finally:
            gc.enable()
        started = time.perf_counter()
        for _, payload in packets:
            orjson.loads(payload)
        parsing = time.perf_counter() - started
        for name, seconds in (
            ("handle_us", handling),
            ("build_us", flushing - encoding[0]),
            ("line_protocol_us", encoding[0]),
            ("orjson_us", parsing),
        ):
            best[name] = min(best.get(name, float("inf")), seconds / readings * 1e6)
    total = best["handle_us"] + best["build_us"] + best["line_protocol_us"]
    return {
        "bench": "ingest_path",
        "path": "singles" if args.singles else f"gateway batches of {PER_GATEWAY}",
        "readings": readings,
        "repeat": args.repeat,
        **{name: round(value, 3) for name, value in best.items()},
        "total_us": round(total, 3),
        "total_vs_orjson": round(total / best["orjson_us"], 2),
    }


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--singles", action="store_true", help="single readings, not batches")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_run(args))))


if __name__ == "__main__":
    main()
