"""The threads that run one process's jobs: at most ``workers`` at once, at most ``max_queued``
waiting behind them.

A waiting job is an entry in a queue, not a thread: threads are started as work arrives (never
more than ``workers``) and end after IDLE_SECONDS without work. A job takes its place with
``reserve()`` before anything about it is recorded; past the bound that raises TooManyJobs
(429, with ``Retry-After``), so a refused job leaves no trace.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from app.errors import TooManyJobs

IDLE_SECONDS = 30.0
RETRY_AFTER_SECONDS = 5


class JobPool:
    """A bounded queue in front of a bounded set of daemon threads."""

    def __init__(self, workers: int, max_queued: int, name: str = "berth-job") -> None:
        self.workers = workers
        self.max_queued = max_queued
        self._name = name
        self._queue: deque[tuple[str, Callable[[], None]]] = deque()
        self._reserved = 0
        self._busy = 0
        self._threads = 0
        self._started = 0
        self._cond = threading.Condition()

    @property
    def threads(self) -> int:
        """Threads alive now (running a job or waiting for one)."""
        with self._cond:
            return self._threads

    def waiting(self) -> list[str]:
        """Keys of the jobs in the queue, oldest first."""
        with self._cond:
            return [key for key, _ in self._queue]

    def _full(self) -> bool:
        held = self._busy + len(self._queue) + self._reserved
        return held >= self.workers + self.max_queued

    def _refuse(self) -> TooManyJobs:
        return TooManyJobs(
            f"This worker already runs {self.workers} jobs and has {self.max_queued} waiting "
            "(BERTH_JOB_CONCURRENCY, BERTH_MAX_QUEUED_JOBS); try again later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def check(self) -> None:
        """Raise TooManyJobs when a job submitted now would be refused."""
        with self._cond:
            if self._full():
                raise self._refuse()

    def reserve(self) -> None:
        """Take a place for a job about to be submitted, or raise TooManyJobs."""
        with self._cond:
            if self._full():
                raise self._refuse()
            self._reserved += 1

    def release(self) -> None:
        """Give back a place taken by ``reserve`` that will not be used."""
        with self._cond:
            self._reserved -= 1

    def submit(self, key: str, task: Callable[[], None]) -> None:
        """Queue ``task`` in the place ``reserve`` took; it runs when a thread is free."""
        with self._cond:
            self._reserved -= 1
            self._queue.append((key, task))
            idle = self._threads - self._busy
            if idle < len(self._queue) and self._threads < self.workers:
                self._threads += 1
                self._started += 1
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{self._started}", daemon=True
                )
                thread.start()
            self._cond.notify()

    def discard(self, key: str) -> bool:
        """Drop a job that has not started (cancelled); False when it is not waiting here."""
        with self._cond:
            for i, (queued, _) in enumerate(self._queue):
                if queued == key:
                    del self._queue[i]
                    return True
        return False

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if not self._cond.wait(IDLE_SECONDS) and not self._queue:
                        self._threads -= 1
                        return
                _, task = self._queue.popleft()
                self._busy += 1
            try:
                task()
            finally:
                with self._cond:
                    self._busy -= 1
