"""Bounded HTTP exchanges with registries and token services.

One exchange (connect, request, answer head and body) ends within ``timeout`` seconds in total,
however slowly the other side sends: a per-exchange watchdog shuts the socket down at the
deadline (a read timeout alone would let a peer sending a byte a second hold it forever).
Bodies are read in pieces up to a cap (JSON answers a few MiB, error bodies a few KiB); past
the cap, or the deadline, the exchange fails with a BerthError and the rest is never read.
Redirects are never followed: a registry cannot send Berth to a host the policy did not check.

The deadline reaches the socket through ``DeadlineAdapter``, a requests adapter whose urllib3
connections register their socket with the exchange running on their thread.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from app.errors import RegistryError, RegistryUnreachable

JSON_LIMIT = 4 * 1024 * 1024
ERROR_LIMIT = 8 * 1024
CHUNK = 64 * 1024

_current = threading.local()


class _Watch:
    """The sockets of one exchange, shut down when its deadline passes."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.expired = False
        self.done = False

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def finish(self) -> None:
        with self._lock:
            self.done = True


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _WatchedMixin:
    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections are shut down at the deadline of the running exchange."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def bounded_session() -> requests.Session:
    """A session whose exchanges ``exchange`` can bound in time."""
    session = requests.Session()
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class Answer:
    """A registry's whole answer, read within the bounds."""

    status_code: int
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    content: bytes = b""

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not (too deeply nested included)."""
        try:
            return json.loads(self.content)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def exchange(
    session: requests.Session,
    method: str,
    url: str,
    *,
    name: str,
    timeout: float,
    limit: int = JSON_LIMIT,
    error_limit: int = ERROR_LIMIT,
    **kwargs: Any,
) -> Answer:
    """Send one request and read its answer, within ``timeout`` in total and the size caps.

    ``name`` (the registry, or its token service) is what error messages call the other side.
    A redirect is a RegistryError; so is a body over ``limit`` (``error_limit`` for 4xx/5xx).
    """
    deadline = time.monotonic() + timeout
    watch = _Watch()
    timer = threading.Timer(timeout, watch.expire)
    timer.daemon = True
    timer.start()
    _current.watch = watch
    try:
        response = session.request(
            method, url, timeout=timeout, stream=True, allow_redirects=False, **kwargs
        )
        try:
            if 300 <= response.status_code < 400:
                raise RegistryError(
                    f"{name} answered with a redirect ({response.status_code}); Berth does not "
                    "follow redirects from registries."
                )
            cap = limit if response.status_code < 400 else error_limit
            content = _read(response, cap, deadline, name, method)
        finally:
            response.close()
        return Answer(response.status_code, response.headers, content)
    except (requests.exceptions.RequestException, OSError) as e:
        if watch.expired or time.monotonic() >= deadline:
            raise _timeout(name, timeout) from None
        raise _failure(name, e) from None
    finally:
        _current.watch = None
        watch.finish()
        timer.cancel()


def _read(response: requests.Response, cap: int, deadline: float, name: str, method: str) -> bytes:
    if method == "HEAD":
        return b""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(name, cap)
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > cap:
            raise _too_large(name, cap)
        if time.monotonic() >= deadline:
            raise requests.exceptions.ReadTimeout()
    return bytes(body)


def _too_large(name: str, cap: int) -> RegistryError:
    size = f"{cap // 1024} KiB" if cap < 1024 * 1024 else f"{cap // (1024 * 1024)} MiB"
    return RegistryError(f"{name} sent an answer larger than {size}; Berth stopped reading it.")


def _timeout(name: str, timeout: float) -> RegistryUnreachable:
    return RegistryUnreachable(f"{name} did not answer within {timeout:g} s.")


def _failure(name: str, error: Exception) -> RegistryUnreachable | RegistryError:
    if isinstance(error, requests.exceptions.SSLError):
        return RegistryUnreachable(
            f"TLS with {name} failed (plain HTTP is used only for loopback hosts and "
            "BERTH_INSECURE_REGISTRIES)."
        )
    if isinstance(error, requests.exceptions.Timeout):
        return RegistryUnreachable(f"{name} did not answer in time.")
    if isinstance(error, requests.exceptions.ConnectionError | OSError):
        return RegistryUnreachable(f"Cannot reach {name}: {_connection_reason(error)}.")
    return RegistryError(f"Request to {name} failed: {type(error).__name__}")


def _connection_reason(error: Exception) -> str:
    text = str(error).lower()
    for marker, reason in (
        ("connection refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network is unreachable"),
        ("connection reset", "connection reset"),
        ("remote end closed", "connection closed by the registry"),
    ):
        if marker in text:
            return reason
    return "connection failed"
