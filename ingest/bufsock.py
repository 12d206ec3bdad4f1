"""A read buffer under paho-mqtt's socket, so that a packet is not three system calls.

paho reads each MQTT packet with two or more `recv` calls on a non-blocking socket: the
command byte, each remaining-length byte, then the rest. For a 114-byte reading that is
three system calls, and each readable event of the event loop handles one packet: about a
fifth of ingest's CPU for single-reading messages. `BufferedSocket` reads up to 8 KiB at
once and hands paho its bytes from memory.

Why 8 KiB and not more: a read's packets all go into the message queue before ingest's
consumer runs again, and the consumer takes at most 256 messages between two yields
(`_YIELD_EVERY` in ingest/service.py). 8 KiB holds at most about 240 of the smallest
readings (34 bytes: a short topic and one quantity), so a busy consumer keeps up with the
reader, the queue stays short and a backlog waits in the broker. With 64 KiB a flood of
single readings piled up in the queue.

Reads are never refused: a first version stopped reading while the queue was long, but
with the socket still readable the event loop then called the reader on every turn (a
busy loop taking a core), a TLS socket's own pending bytes kept aiomqtt's reader looping
forever, and a pause past twice the keepalive would have dropped the connection. While
the consumer waits (a flush awaiting SQL or InfluxDB), the reader fills the queue as it
did before this module (aiomqtt's limit, `max_queued_messages`, bounds it; QoS 1 messages
are bounded well below it by the broker's in-flight window).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

READ_SIZE = 8 * 1024


class BufferedSocket:
    """A socket (plain, TLS or paho's websocket wrapper) whose reads are buffered; every
    other call goes to the socket itself."""

    __slots__ = ("_buf", "_pos", "_read_size", "_sock")

    def __init__(self, sock: Any, read_size: int = READ_SIZE) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._read_size = read_size

    def recv(self, bufsize: int) -> bytes:
        """Up to bufsize bytes: from the buffer, else from one read of the socket (its
        exceptions, such as BlockingIOError when nothing has arrived, pass through)."""
        if self._pos >= len(self._buf):
            data: bytes = self._sock.recv(max(bufsize, self._read_size))
            if len(data) <= bufsize:
                return data  # all of it (or b"": the connection closed)
            self._buf, self._pos = data, 0
        end = self._pos + bufsize
        chunk = self._buf[self._pos : end]
        if end >= len(self._buf):
            self._buf, self._pos = b"", 0
        else:
            self._pos = end
        return chunk

    def pending(self) -> int:
        """Bytes that can be read without waiting for the socket to become readable."""
        inner: Callable[[], int] | None = getattr(self._sock, "pending", None)
        return len(self._buf) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def buffer_reads(paho_client: Any) -> bool:
    """Make a paho client read through a BufferedSocket; False (and a warning) when this
    paho version has no `_create_socket` to wrap, and reads stay unbuffered."""
    create = getattr(paho_client, "_create_socket", None)
    if create is None:
        log.warning("paho-mqtt has no _create_socket: MQTT reads are not buffered")
        return False

    def create_buffered() -> BufferedSocket:
        return BufferedSocket(create())

    paho_client._create_socket = create_buffered
    return True
