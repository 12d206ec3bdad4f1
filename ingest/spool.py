"""A bounded on-disk spool of line-protocol chunks waiting for InfluxDB.

While InfluxDB is unreachable, the writer moves each chunk here; once a chunk is on disk
its MQTT messages can be acknowledged, and a restart picks the spool up where it was.
One file per chunk, named `{sequence:016d}-{readings}.lp`, written to a temporary name,
fsync'ed and renamed, so a crash leaves either the whole chunk or none of it. Chunks are
written back oldest first; one that was written but not yet deleted when the process died
is written again, which InfluxDB absorbs (the same series and timestamp is the same point).
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ingest import metrics

log = logging.getLogger(__name__)

_SUFFIX = ".lp"


class SpoolFull(OSError):
    """The spool is at its size bound; the chunk stays in memory (not acknowledged)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(errno.ENOSPC, f"spool full: {size:,} bytes of {limit:,} allowed")


@dataclass(frozen=True, slots=True)
class Segment:
    """One spooled chunk."""

    path: Path
    readings: int
    size: int


class Spool:
    """Chunks on disk, oldest first, bounded by total bytes."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._segments: list[Segment] = []
        self._next = 0
        self.bytes = 0
        self.readings = 0
        for stale in directory.glob("*.tmp"):  # a chunk the last process did not finish
            stale.unlink()
        for path in sorted(directory.glob(f"*{_SUFFIX}")):
            sequence, readings = _parse_name(path)
            if sequence is None:
                log.warning("spool: ignoring %s (not a spool file name)", path.name)
                continue
            self._add(Segment(path, readings, path.stat().st_size))
            self._next = max(self._next, sequence + 1)
        if self._segments:
            log.warning(
                "spool: %d readings (%d bytes) from an earlier run wait for InfluxDB in %s",
                self.readings,
                self.bytes,
                directory,
            )
        self._publish()

    def __len__(self) -> int:
        return len(self._segments)

    def append(self, body: bytes, readings: int) -> None:
        """Write one chunk durably; raises SpoolFull or OSError (e.g. disk full)."""
        if self.bytes + len(body) > self.max_bytes:
            raise SpoolFull(self.bytes + len(body), self.max_bytes)
        path = self.directory / f"{self._next:016d}-{readings}{_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        self._next += 1
        self._add(Segment(path, readings, len(body)))
        metrics.SPOOLED.inc(readings)
        self._publish()

    def oldest(self, max_bytes: int) -> list[Segment]:
        """The oldest segments, as many as fit in one request of max_bytes (at least one)."""
        taken: list[Segment] = []
        size = 0
        for segment in self._segments:
            if taken and size + segment.size > max_bytes:
                break
            taken.append(segment)
            size += segment.size
        return taken

    @staticmethod
    def read(segments: list[Segment]) -> bytes:
        """The concatenated bodies of segments."""
        return b"".join(segment.path.read_bytes() for segment in segments)

    def remove(self, segments: list[Segment]) -> None:
        """Forget segments that are now in InfluxDB (the oldest ones)."""
        for segment in segments:
            segment.path.unlink(missing_ok=True)
            self.bytes -= segment.size
            self.readings -= segment.readings
        done = {segment.path for segment in segments}
        self._segments = [s for s in self._segments if s.path not in done]
        self._publish()

    def _add(self, segment: Segment) -> None:
        self._segments.append(segment)
        self.bytes += segment.size
        self.readings += segment.readings

    def _publish(self) -> None:
        metrics.SPOOL_BYTES.set(self.bytes)
        metrics.SPOOL_READINGS.set(self.readings)


def _parse_name(path: Path) -> tuple[int | None, int]:
    sequence, _, readings = path.stem.partition("-")
    if not (sequence.isdigit() and readings.isdigit()):
        return None, 0
    return int(sequence), int(readings)
