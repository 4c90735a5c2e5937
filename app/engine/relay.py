"""Relaying a download from one socket to another inside the kernel (``splice(2)``).

A tar download passes from the engine's socket to the client's. Copied through Python, each
mebibyte is read into a buffer, joined with its chunked-encoding frame into a new one (gunicorn
does that on every write) and written again: copies made on the two cores that the engine,
writing the tar, and the client, reading it, need as well. ``relay`` moves member data through a
pipe with ``splice(2)`` instead, and reads into Python only the bytes that must be looked at:
the tar headers that the framing check follows, a few KiB of a large archive. Linux only (see
``available``). Plain logic on sockets: no flask, no docker.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Callable
from typing import Protocol

PIPE_BYTES = 1024 * 1024  # bytes moved per splice; the pipe is grown to hold them
_LOOK_BYTES = 64 * 1024  # bytes read into Python at a time where the watcher must see them


class SourceFailed(Exception):
    """Reading the source socket failed; the OSError is the cause."""


class Watcher(Protocol):
    """Follows a stream's framing (``app.domain.tar_framing.TarFraming``)."""

    def feed(self, data: bytes) -> None: ...

    def unseen(self) -> int: ...

    def skip(self, size: int) -> None: ...


def available() -> bool:
    return hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")


def relay(
    source: socket.socket,
    sink: socket.socket,
    watcher: Watcher,
    *,
    chunked: bool,
    sent: Callable[[int], None],
    lead: bytes = b"",
) -> None:
    """Send ``lead`` (bytes ``watcher`` has already seen), then move ``source``'s bytes to
    ``sink`` until the source ends (its peer closes it).

    ``watcher`` is fed every byte but the ones its ``unseen()`` lets pass, and may raise to
    stop the relay before the bytes it refused are sent. With ``chunked`` each piece goes out as
    an HTTP/1.1 chunk (the server writes the last, empty one). ``sent(n)`` follows each piece.
    Both sockets must be blocking. A failing read of ``source`` raises SourceFailed; a failing
    write to ``sink`` (the client went away) raises its OSError.
    """
    read_end, write_end = os.pipe()
    framing = _Chunks(sink) if chunked else None
    try:
        with contextlib.suppress(OSError):  # past /proc/sys/fs/pipe-max-size: the default 64 KiB
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        if lead:
            _send_seen(sink, lead, framing)
            sent(len(lead))
        while True:
            unseen = watcher.unseen()
            if unseen:
                size = _read(os.splice, source.fileno(), write_end, min(unseen, PIPE_BYTES))
                if not size:
                    break
                watcher.skip(size)
                _send_piped(read_end, sink, size, framing)
            else:
                data = _read(source.recv, _LOOK_BYTES)
                if not data:
                    break
                watcher.feed(data)
                _send_seen(sink, data, framing)
                size = len(data)
            sent(size)
        if framing:
            framing.end()
    finally:
        os.close(read_end)
        os.close(write_end)


def _read(read: Callable[..., int | bytes], *args: int) -> int | bytes:
    try:
        return read(*args)
    except OSError as e:
        raise SourceFailed(f"{type(e).__name__}: {e}") from e


def _send_seen(sink: socket.socket, data: bytes, framing: _Chunks | None) -> None:
    """Send bytes Python holds (as one chunk with ``framing``)."""
    if framing:
        framing.start(len(data))
        sink.sendall(data, socket.MSG_MORE)  # the chunk's closing CRLF follows
    else:
        sink.sendall(data)


def _send_piped(read_end: int, sink: socket.socket, size: int, framing: _Chunks | None) -> None:
    """Move ``size`` bytes waiting in the pipe to ``sink`` (as one chunk with ``framing``)."""
    flags = os.SPLICE_F_MOVE
    if framing:
        framing.start(size)
        flags |= os.SPLICE_F_MORE  # the chunk's closing CRLF follows
    left = size
    while left:
        moved = os.splice(read_end, sink.fileno(), left, flags=flags)
        if not moved:
            raise BrokenPipeError("the client's socket takes no more bytes")
        left -= moved


class _Chunks:
    """HTTP/1.1 chunk frames around the pieces sent to ``sink``, one write per frame.

    A chunk's closing CRLF goes out with the next chunk's size line (``end`` sends the last
    one); the server writes the final empty chunk.
    """

    def __init__(self, sink: socket.socket) -> None:
        self._sink = sink
        self._open = False

    def start(self, size: int) -> None:
        """Send the size line of a chunk whose ``size`` bytes the caller sends next."""
        self._sink.sendall(b"%s%X\r\n" % (b"\r\n" if self._open else b"", size), socket.MSG_MORE)
        self._open = True

    def end(self) -> None:
        if self._open:
            self._sink.sendall(b"\r\n")
            self._open = False
