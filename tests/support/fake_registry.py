"""A misbehaving v2 registry and a bare listener on loopback, for outbound-policy tests.

    with FakeRegistry(realm="http://127.0.0.1:PORT/token") as registry:
        # GET /v2/... -> 401 with WWW-Authenticate: Bearer realm="<realm>",service="fake"
        ...
    with FakeRegistry(mode="drip") as registry:        # one byte every `interval` s, forever
    with FakeRegistry(mode="huge-json") as registry:   # 200, `size` bytes of a JSON list
    with FakeRegistry(mode="huge-error") as registry:  # 404, `size` bytes of error text
    with FakeRegistry(mode="realm-error") as realm:    # 500 with SECRET_PAGE as the body

Modes that stream write until the client goes away; ``sent`` counts the bytes written, so a test
can tell that Berth stopped reading early. ``Listener`` is a listening socket that only records
whether anyone connected: ``listener.connected(timeout)``.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_PAGE = b"<html>internal admin console: db password hunter2</html>"


class FakeRegistry:
    def __init__(
        self,
        mode: str = "challenge",
        *,
        realm: str = "",
        interval: float = 2.0,
        size: int = 100 * 1024 * 1024,
    ) -> None:
        self.mode = mode
        self.realm = realm
        self.interval = interval
        self.size = size
        self.sent = 0
        self.requests: list[str] = []
        self._stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(self.path)
                try:
                    fake.answer(self)
                except OSError:
                    pass  # the client went away, as it should

            do_POST = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "challenge":
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", f'Bearer realm="{self.realm}",service="fake"')
            self._finish(handler, body, "application/json")
        elif self.mode == "realm-error":
            handler.send_response(500)
            self._finish(handler, SECRET_PAGE, "text/html")
        elif self.mode == "drip":
            handler.wfile.write(b"H")  # the status line, never finished
            handler.wfile.flush()
            while not self._stop.wait(self.interval):
                handler.wfile.write(b"T")
                handler.wfile.flush()
                self.sent += 1
        elif self.mode in ("huge-json", "huge-error"):
            status = 200 if self.mode == "huge-json" else 404
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")  # no length to refuse early
            handler.end_headers()
            chunk = (b'"r",' if status == 200 else b"x" * 4) * 16384
            if status == 200:
                self._chunk(handler, b'{"repositories":[')
            while self.sent < self.size and not self._stop.is_set():
                self._chunk(handler, chunk)
                self.sent += len(chunk)
            self._chunk(handler, b"")
        else:
            raise AssertionError(f"unknown mode {self.mode}")

    @staticmethod
    def _chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    @staticmethod
    def _finish(handler: BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def __enter__(self) -> FakeRegistry:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A loopback port that listens and records connection attempts, answering nothing."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def connected(self, timeout: float = 1.0) -> bool:
        """Whether a connection arrived (now, or within ``timeout``)."""
        self.sock.settimeout(timeout)
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return False
        conn.close()
        return True

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def closed_port() -> int:
    """A loopback port with nothing listening on it (just released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
