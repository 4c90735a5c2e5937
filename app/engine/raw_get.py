"""A GET on the engine's unix socket in HTTP/1.0, for downloads relayed inside the kernel.

To an HTTP/1.1 request the engine answers a download in chunked transfer encoding, whose frames
only Python can take apart. To an HTTP/1.0 request it sends the body as it is and closes the
connection at its end (HTTP/1.0 has no chunks), so the body's bytes can go from this socket to
the client's with ``splice(2)`` (``app.engine.relay``). The end of the body is then told from a
cut by the tar framing, which is followed anyway. Used only for the engine's own unix socket, where
no TLS sits between Berth and the bytes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

_HEAD_LIMIT = 64 * 1024  # status line and headers; the engine's are a few hundred bytes
_ERROR_BODY_LIMIT = 1024 * 1024


class RawBody:
    """The body of an HTTP/1.0 response on a socket of its own; it ends when the engine closes."""

    def __init__(self, sock: socket.socket, start: bytes) -> None:
        self.socket = sock
        self._start = start  # body bytes that came with the headers

    def take_start(self) -> bytes:
        start, self._start = self._start, b""
        return start

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes, fewer only at the end of the body."""
        buffer = bytearray(self.take_start())
        while len(buffer) < size:
            data = self.socket.recv(min(size - len(buffer), 1024 * 1024))
            if not data:
                break
            buffer += data
        return bytes(buffer)

    def close(self) -> None:
        self.socket.close()


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: RawBody

    def read_error_body(self) -> bytes:
        """The whole (short) body of a refusal, and the connection closed."""
        try:
            data = self.body.take_start()
            while len(data) < _ERROR_BODY_LIMIT and (more := self.body.socket.recv(65536)):
                data += more
            return data
        finally:
            self.body.close()


def raw_get(socket_path: str, target: str, user_agent: str) -> RawResponse:
    """Send ``GET target HTTP/1.0`` on a new connection to ``socket_path``; read the headers.

    Raises OSError when the engine cannot be reached or closes before answering, ValueError
    when the answer is not HTTP.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        request = f"GET {target} HTTP/1.0\r\nHost: docker\r\nUser-Agent: {user_agent}\r\n\r\n"
        sock.sendall(request.encode("ascii"))
        received = b""
        while b"\r\n\r\n" not in received:
            if len(received) > _HEAD_LIMIT:
                raise ValueError("the engine's answer has no end of headers")
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("the engine closed the connection before answering")
            received += data
        head, start = received.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        _, status, reason = (status_line.split(" ", 2) + [""])[:3]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise ValueError("the engine framed an HTTP/1.0 answer in chunks")
        return RawResponse(int(status), reason, headers, RawBody(sock, start))
    except BaseException:
        sock.close()
        raise
