"""A logging handler that writes lines from a thread of its own, many lines per write.

A request thread only formats its line and appends it to a list; the writer thread takes
everything appended in the last 50 ms and sends it in one ``write`` and one flush. Why: a
request thread that writes its own line waits on the log's file, which under load (an archive
filling the page cache) holds up the answers; one batched write per wake-up costs far less.

No line is dropped: past ``max_pending`` lines waiting, a request thread waits for the writer.
``flush()`` returns once every line handed over before it is written (``logging.shutdown`` calls
it at exit). A forked child starts with no pending line and its own writer thread.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import TextIO

_FLUSH_TIMEOUT_S = 5.0
_GATHER_S = 0.05  # how long the writer lets lines gather before a write


def _resetter(handler: weakref.ref[BatchedLineHandler]):
    def reset() -> None:
        if (alive := handler()) is not None:
            alive._reset()

    return reset


class BatchedLineHandler(logging.Handler):
    def __init__(self, stream: TextIO, max_pending: int = 10_000) -> None:
        super().__init__()
        self._stream = stream
        self._max_pending = max_pending
        self._reset()
        os.register_at_fork(after_in_child=_resetter(weakref.ref(self)))

    def _reset(self) -> None:
        self._pending: list[str] = []
        self._handed = 0  # lines appended so far
        self._written = 0  # lines the writer has sent (or given up on)
        self._closed = False
        self._changed = threading.Condition(threading.Lock())
        self._writer: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        with self._changed:
            if self._closed:
                return
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_lines, name="berth-log-writer", daemon=True
                )
                self._writer.start()
            while len(self._pending) >= self._max_pending and not self._closed:
                self._changed.wait()
            self._pending.append(line)
            self._handed += 1
            if len(self._pending) in (1, self._max_pending // 2):
                self._changed.notify_all()  # the writer waits for a first line, or gathers

    def _write_lines(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if not self._closed and len(self._pending) < self._max_pending // 2:
                    # Let a batch gather: one wake-up (and one turn for the GIL) per batch,
                    # not one per line. Woken early by close(), flush() or a filling list.
                    self._changed.wait(_GATHER_S)
                lines, self._pending = self._pending, []
                if not lines:  # closed and drained
                    return
                self._changed.notify_all()  # room again for a waiting request thread
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):  # the stream is gone: nothing to tell it to
                pass
            with self._changed:
                self._written += len(lines)
                self._changed.notify_all()

    def flush(self) -> None:
        with self._changed:
            target = self._handed
            if self._writer is None or not self._writer.is_alive():
                return
            self._changed.notify_all()  # cut the writer's gathering short
            self._changed.wait_for(lambda: self._written >= target, _FLUSH_TIMEOUT_S)

    def close(self) -> None:
        self.flush()
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        super().close()
