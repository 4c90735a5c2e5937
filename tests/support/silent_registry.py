"""A loopback listener that accepts connections and never answers: a registry that hangs.

    with SilentRegistry() as silent:
        # pull 127.0.0.1:{silent.port}/x:1: the engine connects and waits for an answer
        silent.wait_connected(timeout=30)
        ...
        silent.wait_all_closed(timeout=10)   # the engine gave up (e.g. the pull was cancelled)

What a client sends is read and dropped, so it never blocks on a full buffer.
"""

from __future__ import annotations

import socket
import threading
import time


class SilentRegistry:
    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.accepted = 0
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        assert self._listener is not None
        return self._listener.getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> SilentRegistry:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, name="silent-registry", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            held = list(self._open)
        for sock in held:
            try:
                sock.close()
            except OSError:
                pass

    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def wait_connected(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.open_connections() == 0:
            if time.monotonic() > deadline:
                raise AssertionError("nobody connected to the silent registry")
            time.sleep(0.05)

    def wait_all_closed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.open_connections():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.open_connections()} connection(s) still open")
            time.sleep(0.05)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.append(sock)
                self.accepted += 1
            threading.Thread(target=self._drain, args=(sock,), daemon=True).start()

    def _drain(self, sock: socket.socket) -> None:
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            with self._lock:
                if sock in self._open:
                    self._open.remove(sock)
            try:
                sock.close()
            except OSError:
                pass
