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
empty first write (a relayed archive's, see ``app.api.archives``) still sends the headers at
once.
"""

from __future__ import annotations

import ctypes
import mmap
import time
from typing import Any

from gunicorn.http import wsgi
from gunicorn.workers import gthread

ONE_WRITE_MAX = 64 * 1024  # larger first pieces go after the headers, not copied onto them
STALE_SECONDS = 3.0  # a worker's loop writes at least once a second (its poll timeout)
BOARD_SLOTS = 64  # workers beyond this many (``TTIN`` signals) accept without looking


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


class BerthWorker(gthread.ThreadWorker):
    """gthread, with the connection board and one-write responses (see the module docstring)."""

    board_slot: int | None = None  # set by the master's pre_fork hook (``give_slot``)

    def init_process(self) -> None:
        # gthread builds each response through wsgi.create(), whose default class is this name.
        wsgi.Response = OneWriteResponse
        super().init_process()

    # gthread's loop reads worker_connections at every turn, on its own thread, and accepts
    # while nr_conns is below it; answering nr_conns turns accepting off.
    @property
    def worker_connections(self) -> int:
        if self.board_slot is None:
            return self._most_connections
        if not self.alive:  # stopping: off the board (handle_exit), so no one waits on it
            return self._most_connections
        now = time.monotonic()
        board.write(self.board_slot, self.nr_conns, now)
        fewest = board.fewest_elsewhere(self.board_slot, now)
        if fewest is not None and self.nr_conns > fewest + self.cfg.threads:
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
