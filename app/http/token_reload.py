"""Tokens that follow their file: a revoked token stops working without a restart.

``ReloadingTokens`` holds the current token store and rebuilds it when a watched file changes.
Each process checks the files' inode, size and modification time at most once per
``interval`` (a ``stat`` per file, on the request path), and at once after ``SIGHUP``. A file
that no longer parses keeps the last good set in service and logs one error per bad version
(the message names the entry, never a secret).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("berth.auth")

CHECK_INTERVAL = 1.0
Stamp = tuple[tuple[int, int, int] | None, ...]


class Store(Protocol):
    def __len__(self) -> int: ...

    def authenticate(self, token: str) -> Any: ...


_LIVE: weakref.WeakSet[ReloadingTokens] = weakref.WeakSet()


class ReloadingTokens:
    """A token store rebuilt by ``build()`` whenever one of ``paths`` changes."""

    def __init__(
        self,
        build: Callable[[], Store],
        paths: Iterable[Path],
        interval: float = CHECK_INTERVAL,
        error: type[Exception] = ValueError,
    ) -> None:
        self._build = build
        self._paths = list(paths)
        self._interval = interval
        self._error = error
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        self._store = build()  # an invalid file at start fails loudly, as before
        self._failed: Stamp | None = None
        self._next_check = time.monotonic() + interval
        self._force = False
        if self._paths:
            _LIVE.add(self)
            _install_sighup()

    def __len__(self) -> int:
        return len(self._store)

    def authenticate(self, token: str) -> Any:
        self.refresh()
        return self._store.authenticate(token)

    def request_reload(self) -> None:
        """Check the files at the next use, whatever the interval (SIGHUP)."""
        self._force = True

    def refresh(self) -> None:
        """Rebuild the store if a file changed since the last check (at most once per interval)."""
        if not self._paths or (not self._force and time.monotonic() < self._next_check):
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread checks now; this request uses the current set
        try:
            self._force = False
            self._next_check = time.monotonic() + self._interval
            stamp = self._stamps()
            if stamp == self._stamp:
                return
            try:
                store = self._build()
            except self._error as e:
                if stamp != self._failed:
                    log.error("tokens not reloaded, the previous set stays in service: %s", e)
                    self._failed = stamp
                return
            self._store, self._stamp, self._failed = store, stamp, None
            log.info("tokens reloaded: %d token(s)", len(store))
        finally:
            self._lock.release()

    def _stamps(self) -> Stamp:
        stamps = []
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                stamps.append(None)
                continue
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(stamps)


def _reload_all(signum: int, frame: Any) -> None:
    for tokens in list(_LIVE):
        tokens.request_reload()


def _install_sighup() -> None:
    """SIGHUP makes every live store check its files at the next request.

    Installed only from the main thread and only over the default action: under gunicorn a
    worker loads the app after resetting its signals, while the master keeps its own HUP (which
    restarts the workers, so they read the files afresh anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGHUP)
    if current in (signal.SIG_DFL, _reload_all):
        signal.signal(signal.SIGHUP, _reload_all)
