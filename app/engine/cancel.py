"""Closing, from another thread, the engine connections a thread is using (job cancellation).

A pull, push or load is one HTTP request whose answer may not start for a long time: the engine
first reaches the registry, or reads the whole upload. Until its headers arrive there is no
stream to abort, and a thread blocked there cannot be interrupted. So inside
``closing_on(register)`` every connection that thread takes from an engine client's pools is
remembered until it goes back, and ``register`` receives one closer that shuts all of them down:
the blocked read returns, and the engine sees its client leave and stops the operation.

requests and urllib3 have no hook for the connection a request uses: ``track`` wraps, on each
pool of one client (never a library's class), the pool's checkout, through
``app.engine.docker_api`` (the one module that reaches into urllib3's private API).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import docker

from app.engine import docker_api

_local = threading.local()


class _Scope:
    """The connections one thread holds inside ``closing_on``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[Any] = set()
        self.closed = False
        self.open = True

    def take(self, conn: Any) -> None:
        with self._lock:
            if self.open:
                self._held.add(conn)
                conn._berth_scope = self
            closed = self.closed
        if closed:
            _shut(conn)  # cancelled meanwhile: its answer must not be waited for

    def give_back(self, conn: Any) -> None:
        with self._lock:
            self._held.discard(conn)
        conn._berth_scope = None

    def close(self) -> None:
        with self._lock:
            self.closed = True
            held = list(self._held)
        for conn in held:
            _shut(conn)

    def end(self) -> None:
        with self._lock:
            self.open = False
            for conn in self._held:
                conn._berth_scope = None
            self._held.clear()


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@contextmanager
def closing_on(register: Callable[[Callable[[], None]], Any]) -> Iterator[None]:
    """Inside, engine connections this thread takes are shut down by the closer given to
    ``register`` (called once, on entry), e.g. a job's ``on_cancel``."""
    scope = _Scope()
    previous = getattr(_local, "scope", None)
    _local.scope = scope
    register(scope.close)
    try:
        yield
    finally:
        _local.scope = previous
        scope.end()


def track(client: docker.APIClient) -> None:
    """Make ``client``'s connections visible to ``closing_on`` (once, when it is created)."""
    docker_api.on_each_pool(client, _track_pool)


def _track_pool(pool: Any) -> None:
    get_conn, put_conn = docker_api.pool_checkout(pool)

    def tracked_get(*args: Any, **kwargs: Any) -> Any:
        conn = get_conn(*args, **kwargs)
        scope = getattr(_local, "scope", None)
        if scope is None or conn is None:
            return conn
        try:
            if scope.closed:
                raise ConnectionAbortedError("the operation was cancelled")
            if conn.sock is None:
                conn.connect()  # now, so that a cancel from here on finds a socket to shut
        except BaseException:
            conn.close()
            put_conn(conn)
            raise
        scope.take(conn)
        return conn

    def tracked_put(conn: Any) -> Any:
        scope = getattr(conn, "_berth_scope", None)
        if scope is not None:
            scope.give_back(conn)
        return put_conn(conn)

    docker_api.replace_pool_checkout(pool, tracked_get, tracked_put)
