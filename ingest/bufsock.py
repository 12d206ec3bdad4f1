"""A read buffer under paho-mqtt's socket, so that a packet is not three system calls.

paho reads each MQTT packet with two or more `recv` calls on a non-blocking socket: the
command byte, each remaining-length byte, then the rest. For a 114-byte reading that is
three system calls, and each readable event of the event loop handles one packet: about a
fifth of ingest's CPU for single-reading messages. `BufferedSocket` reads up to 8 KiB at
once and hands paho its bytes from memory.

Nothing waits in the buffer unseen: aiomqtt's reader calls paho's `loop_read` again while
the socket reports `pending()` bytes (its mechanism for TLS, whose sockets hold decrypted
bytes the same way), and `pending()` counts the buffered bytes too.

At most one read of the socket per turn of the event loop: a read usually ends inside a
packet, and completing that packet would read again, and again, so that aiomqtt's reader
drained the socket for as long as the broker kept sending, while ingest's consumer waited
for its turn and the queue between them grew (seen in bench/ingest_ceiling.py with
gateway batches). With one 8 KiB read per turn (at most ~240 of the smallest messages),
the consumer, which takes up to 256 messages a turn, keeps up, and a backlog stays in the
broker. A second read in the same turn answers BlockingIOError, as an empty socket would;
paho keeps the part of the packet it has and the next turn completes it (the socket is
still readable). Bytes the socket itself holds (TLS) are always read: refusing them would
keep aiomqtt's reader looping on `pending()`.

A first version instead stopped reading while the queue was long: with the socket still
readable, the event loop then called the reader on every turn (a busy loop taking a core),
and a pause past twice the keepalive would have dropped the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

READ_SIZE = 8 * 1024


class BufferedSocket:
    """A socket (plain, TLS or paho's websocket wrapper) whose reads are buffered; every
    other call goes to the socket itself."""

    __slots__ = ("_buf", "_inner_pending", "_pos", "_read_size", "_read_this_turn", "_sock")

    def __init__(self, sock: Any, read_size: int = READ_SIZE) -> None:
        self._sock = sock
        # Looked up once: aiomqtt asks pending() after every packet, and a plain socket's
        # missing attribute would cost an AttributeError each time.
        inner: Callable[[], int] | None = getattr(sock, "pending", None)
        self._inner_pending: Callable[[], int] = inner if inner is not None else _nothing
        self._buf = b""
        self._pos = 0
        self._read_size = read_size
        self._read_this_turn = False

    def recv(self, bufsize: int) -> bytes:
        """Up to bufsize bytes: from the buffer, else from one read of the socket (its
        exceptions, such as BlockingIOError when nothing has arrived, pass through);
        BlockingIOError for a second read in one turn of the event loop."""
        if self._pos >= len(self._buf):
            if self._read_this_turn and not self._inner_pending():
                raise BlockingIOError("read once per turn of the event loop")
            data: bytes = self._sock.recv(max(bufsize, self._read_size))
            self._count_read()
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
        return len(self._buf) - self._pos + self._inner_pending()

    def _count_read(self) -> None:
        if self._read_this_turn:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on an event loop (paho's own thread): no turns to share
        self._read_this_turn = True
        loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._read_this_turn = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _nothing() -> int:
    return 0


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
