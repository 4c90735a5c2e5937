"""A TCP proxy in front of a registry that slows big uploads to a crawl until released.

    with StallingProxy(("127.0.0.1", registry_port)) as proxy:
        # push to 127.0.0.1:{proxy.port}/name:tag: the engine talks to the registry through
        # the proxy. Once a connection has sent `stall_after` bytes (default 2 MiB), the rest
        # is forwarded at `rate` bytes/s (default 16 KiB/s), so a big layer takes minutes...
        proxy.wait_stalled(timeout=30)
        ...
        proxy.release()   # ...until released: then everything flows at full speed again.

Nothing is dropped: a stalled push that is not cancelled completes after ``release()``. Small
layers (below ``stall_after``) pass untouched. The engine treats 127.0.0.0/8 registries as
insecure, so plain TCP through the proxy works.
"""

from __future__ import annotations

import socket
import threading
import time


class _Connection:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.sent = 0
        self.stalled = False
        self.client_closed = threading.Event()


class StallingProxy:
    def __init__(
        self,
        upstream: tuple[str, int],
        stall_after: int = 2 * 1024 * 1024,
        rate: int = 16 * 1024,
    ) -> None:
        self.upstream = upstream
        self.stall_after = stall_after
        self.rate = rate
        self.connections: list[_Connection] = []
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        assert self._listener is not None
        return self._listener.getsockname()[1]

    def start(self) -> StallingProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, name="stall-proxy", daemon=True).start()
        return self

    def release(self) -> None:
        """Stop stalling: forward everything at full speed from now on."""
        self._released.set()

    def stop(self) -> None:
        self._stopped.set()
        self._released.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            connections = list(self.connections)
        for conn in connections:
            for sock in (conn.client, conn.upstream):
                try:
                    sock.close()
                except OSError:
                    pass

    def __enter__(self) -> StallingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stalled(self) -> list[_Connection]:
        with self._lock:
            return [c for c in self.connections if c.stalled]

    def wait_stalled(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.stalled():
            if time.monotonic() > deadline:
                raise AssertionError("no upload reached the stall point")
            time.sleep(0.05)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            conn = _Connection(client, upstream)
            with self._lock:
                self.connections.append(conn)
            threading.Thread(target=self._forward, args=(conn,), daemon=True).start()
            threading.Thread(target=self._backward, args=(conn,), daemon=True).start()

    def _forward(self, conn: _Connection) -> None:
        """Client → registry; past the stall point, at a trickle until released."""
        tick = 0.05
        try:
            while True:
                slow = conn.stalled and not self._released.is_set()
                if slow:
                    self._released.wait(tick)
                    data = conn.client.recv(max(1, int(self.rate * tick)))
                else:
                    data = conn.client.recv(65536)
                if not data:
                    break
                conn.sent += len(data)
                if conn.sent > self.stall_after:
                    conn.stalled = True
                conn.upstream.sendall(data)
        except OSError:
            pass
        finally:
            conn.client_closed.set()
            try:
                conn.upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _backward(self, conn: _Connection) -> None:
        """Registry → client."""
        try:
            while True:
                data = conn.upstream.recv(65536)
                if not data:
                    break
                conn.client.sendall(data)
        except OSError:
            pass
        finally:
            try:
                conn.client.shutdown(socket.SHUT_WR)
            except OSError:
                pass
