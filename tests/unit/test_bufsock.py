"""BufferedSocket: paho's small reads served from one larger read of a real socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.bufsock import BufferedSocket, buffer_reads


@pytest.fixture
def pair() -> Iterator[tuple[BufferedSocket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    yield BufferedSocket(ours, read_size=16), peer
    ours.close()
    peer.close()


def test_small_reads_come_from_one_read(pair: tuple[BufferedSocket, socket.socket]) -> None:
    sock, peer = pair
    peer.sendall(b"\x30\x0aabcdefghij\x30\x02xy")  # two packets, 16 bytes
    assert sock.recv(1) == b"\x30"
    assert sock.pending() == 15  # the rest of the 16-byte read waits in memory
    assert sock.recv(1) == b"\x0a"
    assert sock.recv(10) == b"abcdefghij"
    assert (sock.recv(1), sock.recv(1)) == (b"\x30", b"\x02")
    assert sock.recv(5) == b"xy"  # short: what there is
    assert sock.pending() == 0
    with pytest.raises(BlockingIOError):  # nothing more has arrived
        sock.recv(1)
    peer.sendall(b"\x30\x01z")
    assert sock.recv(1) == b"\x30"  # from the socket again
    assert sock.pending() == 2


def test_a_read_larger_than_the_buffer_passes_through(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, peer = pair
    peer.sendall(b"x" * 40)
    assert sock.recv(30) == b"x" * 30  # one read of 30 bytes, nothing kept
    assert sock.pending() == 0
    assert sock.recv(30) == b"x" * 10


def test_buffered_bytes_come_before_the_end_of_the_connection(
    pair: tuple[BufferedSocket, socket.socket],
) -> None:
    sock, peer = pair
    peer.sendall(b"abcdef")
    peer.close()
    assert sock.recv(2) == b"ab"
    assert sock.recv(10) == b"cdef"
    assert sock.recv(1) == b""  # then the close, as paho expects it


def test_everything_else_goes_to_the_socket(pair: tuple[BufferedSocket, socket.socket]) -> None:
    sock, peer = pair
    inner = sock._sock
    assert sock.fileno() == inner.fileno()
    assert sock.send(b"hello") == 5
    assert peer.recv(5) == b"hello"


def test_pending_adds_what_the_socket_itself_holds() -> None:
    class TlsLike:  # a TLS socket holds decrypted bytes of its own
        def recv(self, n: int) -> bytes:
            return b"12345678"[:n]

        def pending(self) -> int:
            return 100

    sock = BufferedSocket(TlsLike(), read_size=8)
    assert sock.recv(2) == b"12"
    assert sock.pending() == 106


def test_buffer_reads_wraps_the_sockets_paho_creates() -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client.connect_async("127.0.0.1", server.getsockname()[1])
        assert buffer_reads(client)
        made = client._create_socket()  # what paho's connect calls
        try:
            assert isinstance(made, BufferedSocket)
        finally:
            made.close()
    finally:
        server.close()


def test_without_paho_s_socket_factory_reads_stay_unbuffered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class OtherPaho:  # a paho version without Client._create_socket
        pass

    client = OtherPaho()
    assert not buffer_reads(client)
    assert not hasattr(client, "_create_socket")
    assert "not buffered" in caplog.text


async def test_one_read_of_the_socket_per_turn_of_the_event_loop() -> None:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    sock = BufferedSocket(ours, read_size=4)
    try:
        peer.sendall(b"abcdefgh")
        assert sock.recv(4) == b"abcd"  # this turn's read
        with pytest.raises(BlockingIOError):  # more has arrived, but it waits for a turn
            sock.recv(1)
        assert sock.pending() == 0  # so aiomqtt's reader stops here
        await asyncio.sleep(0)  # the next turn (the consumer's, in ingest)
        assert sock.recv(4) == b"efgh"
    finally:
        ours.close()
        peer.close()


async def test_bytes_the_socket_itself_holds_are_read_in_the_same_turn() -> None:
    class TlsLike:  # decrypted bytes wait inside the TLS layer, announced by pending()
        def __init__(self) -> None:
            self.held = b"12345678"

        def recv(self, n: int) -> bytes:
            data, self.held = self.held[:n], self.held[n:]
            return data

        def pending(self) -> int:
            return len(self.held)

    sock = BufferedSocket(TlsLike(), read_size=4)
    assert sock.recv(4) == b"1234"
    assert sock.pending() == 4
    assert sock.recv(4) == b"5678"  # not refused: aiomqtt would loop on pending() forever
