"""Berth's gunicorn worker: gunicorn's ``gthread``, with request heads read by its loop, short
and long requests on threads of their own, and responses sent in one write
(``app.server.one_write``).

gthread gives a new or kept-alive connection a thread as soon as its first byte arrives, and the
thread then reads the request head with a blocking socket: a client sending a header line every
few seconds holds a thread for as long as it likes, and a few dozen hold them all. Here the
worker's loop reads the head (TLS handshake included) from the non-blocking socket and hands the
connection to a thread only once the head is whole; a connection whose head is not whole
``BERTH_HEADER_TIMEOUT`` seconds after it was accepted (kept alive: after its next request
began) is closed. A request body that sends nothing for ``BERTH_BODY_TIMEOUT`` seconds fails its
read (``ClientStalled``), and the connection is closed after the answer.

With the head read, the loop knows the route: short requests run on ``BERTH_THREADS`` threads,
and requests that may hold a thread for long (``app.http.long_requests``) on gunicorn's
``threads`` more (``BERTH_THREADS`` + ``BERTH_MAX_TRANSFERS`` + ``BERTH_MAX_EVENT_STREAMS`` by
default: room for every transfer and event stream, and ``BERTH_THREADS`` more for pulls,
pushes and prompt refusals). Long requests never take a short request's thread, and a burst of short
requests runs on no more threads than it needs.

gunicorn's internals used here (``enqueue_req``, ``murder_pending``, ``handle_request``, the
``TConn`` fields, the parser's ``unreader``, how the pool from ``get_thread_pool`` is called) are
pinned with gunicorn's version and checked by ``tests/unit/test_gunicorn_contract.py``.
"""

from __future__ import annotations

import contextlib
import selectors
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gunicorn_sock
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers import gthread

from app.config import load_config
from app.http.long_requests import is_long
from app.server.one_write import one_write_app

HEAD_BYTES_MAX = 64 * 1024  # past this, the parser (bounded by the deadline) reads the rest
_HEAD_READ = 64 * 1024


class ClientStalled(TimeoutError):
    """The client sent nothing for too long: the rest of its head, or the next bytes of its body.

    A TimeoutError, as gunicorn's body drain expects from a read that gave up.
    """


class TimedUnreader(SocketUnreader):
    """gunicorn's socket reader, with limits: while a head is read (``deadline`` set) the rest
    of the head deadline, then ``body_timeout`` seconds for each read of the body.

    A read that times out raises ClientStalled, and so does every later one: the connection is
    closed after the answer. A caller's own socket timeout (gunicorn's drain) is kept if shorter.
    """

    def __init__(self, sock: Any, body_timeout: float) -> None:
        super().__init__(sock)
        self.body_timeout = body_timeout
        self.deadline: float | None = None
        self.stalled = False

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.stalled:
            raise ClientStalled("the client stalled earlier on this connection")
        if self.deadline is None:
            limit = self.body_timeout
        else:
            limit = self.deadline - time.monotonic()
        prior = self.sock.gettimeout()
        if prior is not None:
            limit = min(limit, prior)
        if limit <= 0:
            self.stalled = True
            raise ClientStalled("the request head was not sent in time")
        self.sock.settimeout(limit)
        try:
            return super().chunk(size_hint)
        except TimeoutError as e:
            self.stalled = True
            raise ClientStalled(f"the client sent nothing for {limit:.0f} s") from e
        finally:
            self.sock.settimeout(prior)


class _Head:
    """A request head being read by the worker's loop."""

    __slots__ = ("data", "deadline", "events", "handshaking")

    def __init__(self, deadline: float) -> None:
        self.data = bytearray()
        self.deadline = deadline
        self.events = 0  # what the poller watches for (0: not registered)
        self.handshaking = False


def head_is_whole(data: bytes | bytearray) -> bool:
    """Whether ``data`` holds a whole request head, or enough for the parser to refuse it."""
    if b"\r\n\r\n" in data:
        return True
    return data.count(b"\n") != data.count(b"\r\n")  # a bare LF: refused at once by the parser


class ThreadLanes:
    """The worker's thread pool as gthread calls it (``submit(handle, conn)``, ``shutdown``):
    two pools, the connection's ``berth_long`` choosing which runs its request."""

    def __init__(self, short_threads: int, long_threads: int) -> None:
        self.short = ThreadPoolExecutor(short_threads, thread_name_prefix="berth-short")
        self.long = ThreadPoolExecutor(long_threads, thread_name_prefix="berth-long")

    def submit(self, handle: Callable[[Any], Any], conn: Any) -> Future:
        pool = self.long if getattr(conn, "berth_long", False) else self.short
        return pool.submit(handle, conn)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.short.shutdown(wait=wait, cancel_futures=cancel_futures)
        self.long.shutdown(wait=wait, cancel_futures=cancel_futures)


class BerthWorker(gthread.ThreadWorker):
    """gthread, with request heads read by the loop (see the module docstring)."""

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if "h2" in cfg.http_protocols or cfg.protocol != "http":
            raise RuntimeError("Berth's worker serves HTTP/1.1 only (http_protocols = h1).")

    def init_process(self) -> None:
        settings = load_config()
        self.header_timeout = settings["BERTH_HEADER_TIMEOUT"]
        self.body_timeout = settings["BERTH_BODY_TIMEOUT"]
        self.short_threads = settings["BERTH_THREADS"]
        self._heads = {}  # by connection, in deadline order
        self._tls = gunicorn_sock.ssl_context(self.cfg) if self.cfg.is_ssl else None
        super().init_process()

    def get_thread_pool(self) -> ThreadLanes:
        """gthread's hook for its pool: short requests' threads, and long ones' (``threads``)."""
        return ThreadLanes(self.short_threads, self.cfg.threads)

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = one_write_app(self.wsgi)  # see app.server.one_write

    def handle_exit(self, sig: Any, frame: Any) -> None:
        super().handle_exit(sig, frame)
        # Event streams never end by themselves: end them, so a graceful stop need not wait
        # for graceful_timeout. A thread: the hub's lock is not for a signal handler.
        application = getattr(getattr(self, "wsgi", None), "__wrapped__", None)
        found = getattr(application, "extensions", {}).get("berth.services")
        if found is not None and found.events is not None:
            threading.Thread(target=found.events.hub.close, daemon=True).start()

    def enqueue_req(self, conn: Any) -> None:
        """Read ``conn``'s request head in this loop; a thread gets it once the head is whole.

        gthread calls this for a new connection, for a kept-alive one that became readable and
        for one whose next request was read ahead with the last body.
        """
        head = _Head(time.monotonic() + self.header_timeout)
        self._heads[conn] = head
        try:
            if conn.parser is not None:
                head.data += conn.parser.unreader.take_buffered()
            elif self._tls is not None:
                conn.sock = self._tls.wrap_socket(
                    conn.sock,
                    server_side=True,
                    do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
                )
                head.handshaking = True
            if conn.sock.gettimeout() != 0.0:  # a read-ahead comes from a thread, blocking
                conn.sock.setblocking(False)
        except (OSError, ValueError):
            self._drop_head(conn)
            return
        self._read_head(conn)

    def _read_head(self, conn: Any, _fileobj: Any = None) -> None:
        head = self._heads.get(conn)
        if head is None:
            return
        try:
            events = self._advance_head(conn, head)
        except (OSError, ValueError):  # gone, reset, or a failed TLS handshake
            events = None
        if events is None:
            self._drop_head(conn)
        elif events is True:
            self._dispatch(conn, head)
        elif events != head.events:
            callback = partial(self._read_head, conn)
            if head.events:
                self.poller.modify(conn.sock, events, callback)
            else:
                self.poller.register(conn.sock, events, callback)
            head.events = events

    def _advance_head(self, conn: Any, head: _Head) -> int | bool | None:
        """Read what the socket holds: True once the head is whole, None if the client left,
        else the events to wait for."""
        try:
            if head.handshaking:
                conn.sock.do_handshake()
                head.handshaking = False
            while not head_is_whole(head.data) and len(head.data) <= HEAD_BYTES_MAX:
                data = conn.sock.recv(_HEAD_READ)
                if not data:
                    return None
                head.data += data
        except (BlockingIOError, ssl.SSLWantReadError):
            return selectors.EVENT_READ
        except ssl.SSLWantWriteError:
            return selectors.EVENT_WRITE
        return True

    def _dispatch(self, conn: Any, head: _Head) -> None:
        del self._heads[conn]
        if head.events:
            self.poller.unregister(conn.sock)
        if conn.parser is None:  # gthread's TConn.init() keeps a parser it finds
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader = TimedUnreader(conn.sock, self.body_timeout)
        conn.parser.unreader.unread(bytes(head.data))
        conn.parser.unreader.deadline = head.deadline
        conn.data_ready = True  # no wait for a first byte in the thread
        conn.berth_long = is_long(head.data)  # which of ThreadLanes' pools runs it
        super().enqueue_req(conn)

    def _drop_head(self, conn: Any) -> None:
        head = self._heads.pop(conn)
        if head.events:
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """gthread's expiry of waiting connections (every turn of its loop), and of late heads."""
        super().murder_pending()
        now = time.monotonic()
        for conn, head in list(self._heads.items()):
            if head.deadline > now:
                break
            self.log.debug("Closing a connection whose request head is late: %s", conn.client)
            self._drop_head(conn)

    def handle_request(self, req: Any, conn: Any) -> bool:
        conn.parser.unreader.deadline = None  # the head is read: the body's reads have their own
        return super().handle_request(req, conn)
