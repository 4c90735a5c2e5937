"""Berth's gunicorn worker: gunicorn's ``gthread`` with connections shared out between workers
and each small response sent in one write.

**Sharing out connections.** gunicorn's workers accept from one listening socket, and a gthread
worker accepts whenever it can, however many connections it already holds. A burst of new
connections then tends to land on the worker that is awake, or on the only one booted yet: wrk's
16 keep-alive connections, opened as soon as the server answered, were split 16/0 in some runs,
and that worker alone served 2,300 inspects/s where two serve 8,000 (its threads pass the GIL
between the two CPUs at every request; README, "The benchmark"). Each worker here writes how
many connections it holds on a board in memory shared by all workers, and stops accepting while
it holds more than ``threads`` connections over the worker holding fewest: the connections wait
in the socket's queue for that worker. A worker that has not written for ``STALE_SECONDS``
(stopped, hung, or gone) does not count, and a stopping worker takes itself off the board, so a
connection is never left waiting for a worker that will not take it; one still booting counts as
holding none. ``SO_REUSEPORT`` (``BERTH_REUSE_PORT``) spreads connections instead, at the price
told in ``gunicorn.conf.py``.

**One write per response.** gunicorn sends a response's status line and headers in one ``send``
and each piece of its body in another: two system calls and two TCP segments for a JSON answer
of a few hundred bytes, and two reads for the client. Here the headers wait for the body's first
bytes and go out with them (up to 64 KiB of them: larger ones would be copied for nothing). An
empty first write (a relayed archive's, see ``app.http.routes.archives``) still sends the headers at
once.

**Slow clients.** gthread gives a new or kept-alive connection a thread as soon as its first byte
arrives, and the thread then reads the request head with a blocking socket: a client sending a
header line every few seconds holds a thread for as long as it likes, and a few dozen hold them
all. Here the worker's loop reads the head (TLS handshake included) from the non-blocking socket
and hands the connection to a thread only once the head is whole; a connection whose head is not
whole ``BERTH_HEADER_TIMEOUT`` seconds after it was accepted (kept alive: after its next request
began) is closed; until then it does not count on the board. A request body that sends nothing
for ``BERTH_BODY_TIMEOUT`` seconds fails its read (``ClientStalled``), and the connection is
closed after the answer.

gunicorn's internals used here (``enqueue_req``, ``murder_pending``, ``handle_request``, the
``TConn`` fields, the parser's ``unreader``) are pinned with gunicorn's version and checked by
``tests/test_gunicorn_contract.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import selectors
import ssl
import time
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gunicorn_sock
from gunicorn.http import wsgi
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers import gthread

from app.config import load_config

ONE_WRITE_MAX = 64 * 1024  # larger first pieces go after the headers, not copied onto them
STALE_SECONDS = 3.0  # a worker's loop writes at least once a second (its poll timeout)
BOARD_SLOTS = 64  # workers beyond this many (``TTIN`` signals) accept without looking
HEAD_BYTES_MAX = 64 * 1024  # past this, the parser (bounded by the deadline) reads the rest
_HEAD_READ = 64 * 1024


class _Slot(ctypes.Structure):
    _fields_ = [("connections", ctypes.c_int64), ("seen", ctypes.c_double)]


class _Header(ctypes.Structure):
    _fields_ = [("in_use", ctypes.c_int64)]  # slots ever claimed: the lowest free one is taken


class ConnectionBoard:
    """How many connections each worker holds, in memory the master maps before forking.

    The master gives each worker a slot (``claim``) and frees it when the worker exits
    (``release``); a worker writes only its own slot, and reads the others at every turn of its
    loop (so only the slots ever used: about 1 us with two workers, 10 with all 64). Each field
    is one aligned 8-byte word, read and written whole.
    """

    def __init__(self, slots: int = BOARD_SLOTS) -> None:
        header = ctypes.sizeof(_Header)
        # Anonymous and shared: the workers forked after this see the master's writes and each
        # other's.
        self._memory = mmap.mmap(-1, header + ctypes.sizeof(_Slot) * slots)
        self._header = _Header.from_buffer(self._memory)
        self._slots = (_Slot * slots).from_buffer(self._memory, header)

    def claim(self, taken: set[int]) -> int | None:
        """A free slot (not in ``taken``) for a worker about to boot; None if all are taken.

        The booting worker counts as live with no connections from now: the others stop at
        ``threads`` connections until it takes its share or ``STALE_SECONDS`` pass.
        """
        for index, slot in enumerate(self._slots):
            if index not in taken:
                slot.connections, slot.seen = 0, time.monotonic()
                self._header.in_use = max(self._header.in_use, index + 1)
                return index
        return None

    def release(self, index: int) -> None:
        self._slots[index].seen = 0.0

    def write(self, index: int, connections: int, now: float) -> None:
        slot = self._slots[index]
        slot.connections, slot.seen = connections, now

    def fewest_elsewhere(self, index: int, now: float) -> int | None:
        """The fewest connections another live worker holds; None if no other one is live."""
        fewest = None
        for other in range(self._header.in_use):
            slot = self._slots[other]
            if other != index and now - slot.seen < STALE_SECONDS:
                fewest = slot.connections if fewest is None else min(fewest, slot.connections)
        return fewest


board = ConnectionBoard()  # made at import: in the master, which loads the worker class


def give_slot(server: Any, worker: Any) -> None:
    """gunicorn ``pre_fork`` hook (the master): a board slot for the worker about to start.

    None with ``reuse_port``: each worker then has a listening socket of its own, and the
    connections the kernel queues on it wait for that worker alone.
    """
    if server.cfg.reuse_port:
        worker.board_slot = None
        return
    taken = {getattr(w, "board_slot", None) for w in server.WORKERS.values()}
    worker.board_slot = board.claim(taken)


def free_slot(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook (the master)."""
    if getattr(worker, "board_slot", None) is not None:
        board.release(worker.board_slot)


class OneWriteResponse(wsgi.Response):
    """A response whose headers go out with the first bytes of its body, in one write."""

    _staging = False
    _head: bytes | None = None

    def write(self, arg: bytes) -> None:
        self._staging = not self.headers_sent and bool(arg)
        try:
            super().write(arg)  # its send_headers() stages; its _emit_body() sends
        finally:
            self._staging = False
            if self._head is not None:  # no body bytes went out after all (HEAD, 204, ...)
                self._send_head()

    def send_headers(self) -> None:
        if self.headers_sent or not self._staging:
            super().send_headers()
            return
        lines = self.default_headers()  # as gunicorn's send_headers() builds them
        lines.extend(f"{k}: {v}\r\n" for k, v in self.headers)
        self._head = ("".join(lines) + "\r\n").encode("latin-1")
        self.headers_sent = True

    def _emit_body(self, data: bytes) -> None:
        if self._head is not None and len(data) > ONE_WRITE_MAX:
            self._send_head()
        head, self._head = self._head, None
        if head is None:
            super()._emit_body(data)
        elif self.chunked:
            self.sock.sendall(b"%s%X\r\n%s\r\n" % (head, len(data), data))
        else:
            self.sock.sendall(head + data)

    def _send_head(self) -> None:
        head, self._head = self._head, None
        self.sock.sendall(head)


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


class BerthWorker(gthread.ThreadWorker):
    """gthread, with the connection board, one-write responses and request heads read by the
    loop (see the module docstring)."""

    board_slot: int | None = None  # set by the master's pre_fork hook (``give_slot``)
    short_threads: int | None = None  # the threads not set aside for archive transfers
    _heads: dict[Any, _Head] = {}  # replaced in init_process, before the loop reads the board

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        super().check_config(cfg, log)
        if "h2" in cfg.http_protocols or cfg.protocol != "http":
            raise RuntimeError("Berth's worker serves HTTP/1.1 only (http_protocols = h1).")

    def init_process(self) -> None:
        settings = load_config()
        self.header_timeout = settings["BERTH_HEADER_TIMEOUT"]
        self.body_timeout = settings["BERTH_BODY_TIMEOUT"]
        self.short_threads = max(1, self.cfg.threads - settings["BERTH_MAX_TRANSFERS"])
        self._heads = {}  # by connection, in deadline order
        self._tls = gunicorn_sock.ssl_context(self.cfg) if self.cfg.is_ssl else None
        # gthread builds each response through wsgi.create(), whose default class is this name.
        wsgi.Response = OneWriteResponse
        super().init_process()

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

    # gthread's loop reads worker_connections at every turn, on its own thread, and accepts
    # while nr_conns is below it; answering nr_conns turns accepting off.
    @property
    def worker_connections(self) -> int:
        if self.board_slot is None:
            return self._most_connections
        if not self.alive:  # stopping: off the board (handle_exit), so no one waits on it
            return self._most_connections
        now = time.monotonic()
        held = self.nr_conns - len(self._heads)  # a head still being read costs no thread
        board.write(self.board_slot, held, now)
        fewest = board.fewest_elsewhere(self.board_slot, now)
        if fewest is not None and held > fewest + (self.short_threads or self.cfg.threads):
            return self.nr_conns
        return self._most_connections

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._most_connections = value

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._leave_board()
        super().handle_exit(sig, frame)

    def run(self) -> None:
        try:
            super().run()
        finally:  # max_requests reached, or the master gone
            self._leave_board()

    def _leave_board(self) -> None:
        if self.board_slot is not None:
            board.release(self.board_slot)
