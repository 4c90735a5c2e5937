"""The in-kernel relay of downloads (app.engine.relay), between real sockets, with the real tar
framing."""

from __future__ import annotations

import io
import os
import socket
import struct
import tarfile
import threading

import pytest

from app.domain.tar_framing import TarFraming, TarFramingError
from app.engine import relay

MIB = 1024 * 1024


def test_the_relay_is_available_here():
    # Berth runs beside a Linux Docker engine: no skip hides a missing splice(2) in CI.
    assert relay.available()


class SeeingFraming(TarFraming):
    """The real framing, counting the bytes it was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def feed(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        super().feed(chunk)


def archive() -> bytes:
    """A tar like `docker save`'s: small files, a big layer, a long (PAX) name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [
            ("VERSION", b"1.0"),
            ("layer.tar", os.urandom(3 * MIB + 123)),
            ("a" * 150 + "/json", b'{"id": "x"}'),
            ("manifest.json", b"[]"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def feed(sock: socket.socket, data: bytes) -> threading.Thread:
    """Write ``data`` to ``sock`` in a thread (as the engine does), then close it."""

    def run() -> None:
        try:
            sock.sendall(data)
        except OSError:
            pass
        finally:
            sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def drain(sock: socket.socket, into: bytearray) -> threading.Thread:
    def run() -> None:
        while data := sock.recv(MIB):
            into.extend(data)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def dechunk(data: bytes) -> tuple[bytes, int]:
    """The body of HTTP/1.1 chunked framing (without the server's last chunk), and the count."""
    body, pos, chunks = bytearray(), 0, 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end], 16)
        assert size > 0, "an empty chunk would end the response early"
        body += data[end + 2 : end + 2 + size]
        assert data[end + 2 + size : end + 4 + size] == b"\r\n"
        pos, chunks = end + 4 + size, chunks + 1
    return bytes(body), chunks


def run_relay(data: bytes, framing: TarFraming, *, chunked: bool) -> tuple[bytes, list[int]]:
    engine_side, source = socket.socketpair()
    sink, client_side = socket.socketpair()
    received = bytearray()
    pieces: list[int] = []
    writer, reader = feed(engine_side, data), drain(client_side, received)
    try:
        relay.relay(source, sink, framing, chunked=chunked, sent=pieces.append)
    finally:
        source.close()
        sink.close()
        writer.join(10)
        reader.join(10)
    return bytes(received), pieces


@pytest.mark.parametrize("chunked", [True, False])
def test_relay_passes_the_archive_whole_and_looks_only_at_its_headers(chunked):
    data = archive()
    framing = SeeingFraming()
    received, pieces = run_relay(data, framing, chunked=chunked)

    body = dechunk(received)[0] if chunked else received
    assert body == data
    assert sum(pieces) == len(data)
    framing.finish()  # the framing followed the whole archive to its end blocks
    assert framing.ended
    # The 3 MiB layer went through the pipe unseen: Python saw headers and small files only.
    assert framing.seen < 512 * 1024 < len(data)


def test_an_error_in_place_of_a_header_fails_the_framing():
    data = archive()
    cut = 512 + 512  # VERSION's header and data block: the next header is replaced
    error = b'{"message":"write /var/lib/docker/tmp/x: no space left on device"}\n'
    framing = TarFraming()
    run_relay(data[:cut] + error, framing, chunked=False)  # the source ended: no more to send
    with pytest.raises(TarFramingError) as failure:
        framing.finish()
    assert failure.value.tail.startswith(b'{"message"')


def test_a_block_that_is_no_header_is_refused_before_it_is_sent():
    data = archive()
    cut = 512 + 512 + 512 + 3 * MIB + 512  # the layer passes (unseen), then the error comes
    error = b'{"message":"open /var/lib/docker/' + b"x" * 600 + b': no space left on device"}\n'
    engine_side, source = socket.socketpair()
    sink, client_side = socket.socketpair()
    received = bytearray()
    feed(engine_side, data[:cut] + error)
    reader = drain(client_side, received)
    with pytest.raises(TarFramingError):
        relay.relay(source, sink, TarFraming(), chunked=False, sent=lambda n: None)
    source.close()
    sink.close()
    reader.join(10)
    assert len(received) == cut  # every archive byte up to the bad block, and not one more


def test_a_broken_source_is_a_source_failure_and_a_gone_client_an_os_error():
    # The engine's connection reset in the middle of the big member (TCP, RST on close).
    listener = socket.create_server(("127.0.0.1", 0))
    engine_side = socket.create_connection(listener.getsockname())
    source, _ = listener.accept()
    listener.close()
    data = archive()
    engine_side.sendall(data[: 2 * MIB])
    sink, client_side = socket.socketpair()
    reader = drain(client_side, bytearray())
    threading.Timer(
        0.2,
        lambda: (
            engine_side.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
            engine_side.close(),
        ),
    ).start()
    with pytest.raises(relay.SourceFailed):
        relay.relay(source, sink, TarFraming(), chunked=True, sent=lambda n: None)
    source.close()
    sink.close()
    reader.join(10)

    # The client hung up: writing to it fails, and that is not the engine's failure.
    engine_side, source = socket.socketpair()
    sink, client_side = socket.socketpair()
    writer = feed(engine_side, data)
    client_side.close()
    with pytest.raises(OSError):  # not SourceFailed: the engine did nothing wrong
        relay.relay(source, sink, TarFraming(), chunked=True, sent=lambda n: None)
    source.close()
    sink.close()
    writer.join(10)
