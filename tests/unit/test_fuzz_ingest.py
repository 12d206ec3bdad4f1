"""Hostile input in process: whatever the payload, ingest decodes it or rejects it with a
reason, never raises, and never loses a message (hypothesis)."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.readings import QUANTITIES
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from ingest import decode
from ingest.acks import AckTracker
from ingest.batch import ReadingBatch
from ingest.decode import DecodeError, Limits, Reason
from ingest.rejected import RejectedStore
from ingest.service import Ingestor

NOW = 1_790_000_000_000
LIMITS = Limits(max_payload_bytes=64 * 1024, max_gateway_readings=50)
REASONS = {v for k, v in vars(Reason).items() if k.isupper()}

# JSON values of every shape: deep nesting, huge and tiny numbers, strings that look like
# numbers or timestamps, and the keys Sigap reads mixed with unknown ones.
_KEYS = st.sampled_from([*QUANTITIES, "ts", "seq", "device_id", "readings", "x", ""])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["2026-11-27T10:00:00Z", "1e400", "NaN", "-0", "2026-13-45T99:99:99"]),
    # Numbers as codecs send them: with units that fit, units that do not, commas, junk.
    st.builds(
        "{}{}{}".format,
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.integers(min_value=-(10**400), max_value=10**400).map(str),
            st.sampled_from(["3,384", "3.3.3", "", ".", "-", "1e309", "nan", "Infinity"]),
        ),
        st.sampled_from(["", " ", "  ", "\u00a0"]),
        st.sampled_from(
            [
                "",
                "V",
                "mV",
                "°C",
                "C",
                "°F",
                "%",
                "%/m",
                "mm",
                "cm",
                "m",
                "kg",
                "ppm",
                "dBm",
                "µg/m³",
                "ug/m3",
                "deg",
                "°",
                "No Sensor",
                "V V",
            ]
        ),
    ),
)
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.one_of(_KEYS, st.text()), inner)
    ),
    max_leaves=40,
)
READING = st.dictionaries(_KEYS, JSON, max_size=8)
TIMESTAMPS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, NOW, NOW + 10**9, NOW - 10**11, NOW // 1000, 10**20]),
)


def _encodings(value: Any) -> list[bytes]:
    """The same value as JSON, as invalid UTF-8, truncated, and with NaN spelled out."""
    try:
        body = orjson.dumps(value)
    except orjson.JSONEncodeError:  # integers beyond 64 bits
        body = repr(value).encode()
    return [body, body.replace(b'"', b"\xff", 1), body[: len(body) // 2], body + b"NaN"]


@settings(max_examples=150, deadline=None)
@given(value=st.one_of(JSON, READING))
def test_device_decoder_decodes_or_rejects_with_a_reason(value: Any) -> None:
    for payload in _encodings(value):
        try:
            reading = decode.device_payload("d1", payload, NOW, LIMITS)
        except DecodeError as exc:
            assert exc.reason in REASONS and exc.detail
            continue
        assert all(math.isfinite(v) or math.isnan(v) for v in reading.values)
        assert any(not math.isnan(v) for v in reading.values)
        assert NOW - LIMITS.max_age_ms <= reading.ts_ms <= NOW + LIMITS.max_future_ms


@settings(max_examples=150, deadline=None)
@given(reading=READING, ts=TIMESTAMPS)
@example(reading={}, ts=float("inf"))  # once found: written as null, so no ts at all
def test_sensor_clocks_out_of_bounds_are_rejected_never_stored_as_now(
    reading: dict[str, Any], ts: Any
) -> None:
    body = reading | {"ts": ts, "temp_c": 30.0}
    try:
        payload = orjson.dumps(body)
    except orjson.JSONEncodeError:  # beyond 64 bits: other tests send such numbers as text
        return
    try:
        decoded = decode.device_payload("d1", payload, NOW, LIMITS)
    except DecodeError as exc:
        assert exc.reason in REASONS
        return
    # orjson writes NaN and infinities as null, and `"ts": null` is no ts: arrival time,
    # as the contract says for a missing ts. Any other ts is the event time.
    assert decoded.ts_from_arrival == (orjson.loads(payload)["ts"] is None)
    assert NOW - LIMITS.max_age_ms <= decoded.ts_ms <= NOW + LIMITS.max_future_ms


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.one_of(READING, JSON), max_size=60))
def test_gateway_decoder_rejects_each_bad_reading_on_its_own(items: list[Any]) -> None:
    payload = _encodings({"readings": items})[0]
    try:
        unpacked = decode.gateway_items(payload, LIMITS)
    except DecodeError as exc:
        assert exc.reason in {Reason.OVERSIZED, Reason.NOT_JSON, Reason.NO_QUANTITY}, exc
        assert items or exc.reason == Reason.NO_QUANTITY
        return
    assert len(unpacked) == len(items)
    for item in unpacked:
        try:
            decode.gateway_item(item, NOW, LIMITS)
        except DecodeError as exc:
            assert exc.reason in REASONS


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(
                ["sigap/devices/f1/up", "sigap/devices/ghost/up", "sigap/gateways/gw/up", "x/y"]
            ),
            st.one_of(JSON, READING).flatmap(lambda v: st.sampled_from(_encodings(v))),
        ),
        max_size=30,
    )
)
async def test_ingestor_accounts_for_every_message(
    sessions: async_sessionmaker[AsyncSession], messages: list[tuple[str, bytes]]
) -> None:
    directory = DeviceDirectory()
    directory.upsert(
        DeviceCreate.model_validate({"id": "f1", "kind": "fire", "lat": -2.5, "lon": 112.9})
    )
    batches: list[ReadingBatch] = []

    async def load(ids: Collection[str]) -> list[DeviceCreate]:
        return []

    async def on_batch(batch: ReadingBatch) -> None:
        batches.append(batch)

    store = RejectedStore(sessions, keep=100_000)
    before = await store.count()
    ingestor = Ingestor(directory, load, store, on_batch, limits=LIMITS, clock=lambda: NOW)
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid))
    for mid, (topic, payload) in enumerate(messages, start=1):
        ingestor.handle(topic, payload, tracker.received(mid, 1))
    await ingestor.flush()
    # Every message is acknowledged, so each ended in a batch or in the rejected store.
    assert acked == list(range(1, len(messages) + 1))
    stored = await store.count() - before
    accepted = sum(len(b) for b in batches)
    assert stored + accepted >= len(messages)
    for record in await store.find(limit=stored or 1):
        assert record.reason in REASONS and record.detail
