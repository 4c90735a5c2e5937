"""Read-ahead for byte streams passed from one connection to another.

Relaying an archive chunk by chunk in one thread alternates: read a chunk from one side, then
write it to the other, then read again. Each side waits while the other works, and the transfer
runs well below the speed of either. ``ReadAhead`` iterates the source in a helper thread, at
most ``depth`` chunks ahead of the consumer, so reading and writing overlap while memory stays
bounded (``depth`` + 2 chunks). Plain logic: no flask, no docker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType

READ_AHEAD_CHUNKS = 4
_POLL = 0.1  # seconds between checks of the stop flag while the queue is full
_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead:
    """Iterate ``source`` in a helper thread, up to ``depth`` items ahead of the consumer.

    An exception raised by the source is raised to the consumer, in order, after the items
    produced before it. ``close()`` (also on leaving a ``with`` block) stops the helper and
    waits for it: ``interrupt`` is called first to wake a helper blocked in a read (closing a
    socket's reading side, for example), and then the source is closed if it can be. The helper
    starts at the first ``next()``, so a ReadAhead that is never iterated costs no thread.
    """

    def __init__(
        self,
        source: Iterable[bytes],
        *,
        depth: int = READ_AHEAD_CHUNKS,
        interrupt: Callable[[], None] | None = None,
        name: str = "read-ahead",
    ) -> None:
        self._source = source
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._interrupt = interrupt
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False

    @property
    def stopping(self) -> bool:
        """True once the consumer has closed: a failing read is then expected, not an error."""
        return self._stop.is_set()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(_Failure(e))

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done or self._stop.is_set():
            raise StopIteration
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item

    def close(self) -> None:
        """Stop the helper thread and wait for it; close the source."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            if self._interrupt is not None:
                self._interrupt()
            self._thread.join()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
