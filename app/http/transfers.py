"""Archive transfers get a bounded share of a worker's threads; short requests keep their own.

A download or upload holds its request thread for as long as its bytes take, at whatever speed
the client reads or sends. It runs on the worker's threads for long requests
(``app.server.worker``), which have room for ``BERTH_MAX_TRANSFERS`` of them and more, and each
transfer takes one of the ``BERTH_MAX_TRANSFERS`` slots here before its first byte, giving it
back when its response ends, however it ends: sent whole, or closed by the server when the
client leaves (an answer built whole, an upload's or an error's, gives it back at once). With
every slot taken, another transfer is answered 503 ``TOO_MANY_TRANSFERS`` with ``Retry-After``
at once, so the other long requests (pulls, pushes, event streams) still find a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from flask import Flask, Response, g

from app.errors import TooManyTransfers
from app.http.accessors import services

RETRY_AFTER_SECONDS = 10


class TransferSlots:
    """``capacity`` transfers at once in this process; ``take`` never waits."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = threading.BoundedSemaphore(capacity)

    def take(self) -> Callable[[], None]:
        """A slot, as the function that gives it back (once, however often it is called)."""
        if not self._free.acquire(blocking=False):
            raise TooManyTransfers(
                f"This worker already runs {self.capacity} archive transfers "
                "(BERTH_MAX_TRANSFERS); try again later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        given_back = threading.Event()
        lock = threading.Lock()

        def release() -> None:
            with lock:
                if given_back.is_set():
                    return
                given_back.set()
            self._free.release()

        return release


class _ReleasingBody:
    """A streamed body that gives its slot back once sent whole, or when closed."""

    def __init__(self, body: Iterable[bytes], release: Callable[[], None]) -> None:
        self._body = body
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        finally:
            self._release()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._release()


def take_transfer_slot() -> None:
    """Hold a transfer slot until this request's response ends; 503 when none is free."""
    if g.get("transfer_release") is None:
        g.transfer_release = services().transfers.take()


def release_transfer_slot() -> None:
    """Give this request's slot back now: its transfer is over before its answer (a spooled
    upload whose answer may wait for its job)."""
    release = g.pop("transfer_release", None)
    if release is not None:
        release()


def init_transfers(app: Flask) -> TransferSlots:
    """The process's slots, and the hooks handing each request's slot to its response."""

    @app.after_request
    def _release_when_the_body_ends(response: Response) -> Response:
        release = g.pop("transfer_release", None)
        if release is not None and response.is_sequence:  # built whole: an upload's, an error
            release()
        elif release is not None:
            response.response = _ReleasingBody(response.response, release)
        return response

    @app.teardown_request
    def _release_unanswered(_error: BaseException | None) -> None:
        release = g.pop("transfer_release", None)  # no response took it (an unhandled failure)
        if release is not None:
            release()

    return TransferSlots(app.config["BERTH_MAX_TRANSFERS"])
