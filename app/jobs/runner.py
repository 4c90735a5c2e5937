"""Running jobs in the worker process that accepted them.

``JobRunner.submit(kind, owner, target, run)`` records a queued job and runs ``run(ctx)`` on
one of the process's job threads (``app.jobs.pool``: at most ``concurrency`` at once, at most
``max_queued`` waiting as ``queued``, holding no thread; past that, 429 TOO_MANY_JOBS). ``run``
returns the result document or raises a BerthError; either lands in the job record.

A monitor thread, alive while this process has jobs, writes their heartbeat and picks up
cancellations requested through any process (a flag in the record). Cancelling calls the
closers the job registered (``ctx.on_cancel``), e.g. aborting the engine stream, and shuts down
every engine connection the job's thread holds (``app.engine.cancel``), also while it still waits
for the engine's first answer, so the engine stops the operation at once. Once cancellation was
asked, the job ends ``cancelled``, whatever it had done by then.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from app.domain.progress import Progress, consume
from app.engine.cancel import closing_on
from app.errors import BerthError, Internal, JobCancelled, JobWorkerLost
from app.jobs.pool import JobPool
from app.jobs.spool import remove_orphans
from app.jobs.store import JobStore
from app.jobs.workers import Worker, is_alive

log = logging.getLogger("berth.jobs")

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0
MONITOR_SECONDS = 0.25
PROGRESS_SECONDS = 0.5
MAX_EVENTS = 10_000
MAX_THINNED_LAYERS = 1_000  # layers whose last progress line time is kept (for thinning)


def cancelled_problem() -> dict[str, Any]:
    return JobCancelled("The job was cancelled before it finished.").to_problem()


def worker_lost_problem(job: dict[str, Any], reason: str) -> dict[str, Any]:
    return JobWorkerLost(reason).to_problem()


class JobContext:
    """What a running job sees: its id, cancellation, and a recorder for its progress."""

    def __init__(self, store: JobStore, job: dict[str, Any]) -> None:
        self.store = store
        self.id: str = job["id"]
        self.kind: str = job["kind"]
        self.target: str | None = job["target"]
        self.cancelled = threading.Event()
        self._closers: list[Callable[[], Any]] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._pending: list[dict[str, Any]] = []
        self._last_flush = 0.0
        self._last_layer_line: dict[str, float] = {}
        self._progress: tuple[int, int] | None = None
        self._dirty = False
        self._flush_lock = threading.Lock()  # keeps event numbers in order across threads

    # -- cancellation

    def on_cancel(self, closer: Callable[[], Any]) -> None:
        """Call ``closer`` (from another thread) when the job is cancelled."""
        with self._lock:
            self._closers.append(closer)
            already = self.cancelled.is_set()
        if already:
            self._call(closer)

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled.is_set():
                return
            self.cancelled.set()
            closers = list(self._closers)
        for closer in closers:
            self._call(closer)

    @staticmethod
    def _call(closer: Callable[[], Any]) -> None:
        try:
            closer()
        except Exception:
            log.debug("a job's cancel hook failed", exc_info=True)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in this thread, its engine connections shut down on cancel
        (for helper threads of a job; the job's own thread is covered already)."""
        with closing_on(self.on_cancel):
            return function(*args)

    def check(self) -> None:
        """Raise JobCancelled once the job was cancelled."""
        if self.cancelled.is_set():
            raise JobCancelled("The job was cancelled before it finished.")

    # -- progress

    def follow(self, events: Iterable[dict[str, Any]], progress: Progress) -> Progress:
        """Read an engine progress stream to its end, recording it; raise its failure.

        A stream with an ``abort()`` method (``app.engine.streams.EngineStream``) is aborted
        on cancellation; any other stream is abandoned at its next event.
        """
        abort = getattr(events, "abort", None)
        if callable(abort):
            self.on_cancel(abort)
        try:
            self.check()
            for line in consume(events, progress):
                self.check()
                self.record(line, progress)
            self.check()
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()  # this thread is the stream's reader, so closing here is safe
        self.flush(progress)
        progress.raise_for_error()
        return progress

    def record(self, line: dict[str, Any], progress: Progress | None = None) -> None:
        """Keep one normalised progress line; byte-count updates are thinned out per layer.

        Lines and progress reach the record at most every PROGRESS_SECONDS (the runner's
        monitor flushes what a quiet stream left pending).
        """
        now = time.monotonic()
        layer = line.get("layer")
        is_tick = layer and line.get("current") is not None
        with self._lock:
            if is_tick and now - self._last_layer_line.get(layer, 0.0) < PROGRESS_SECONDS:
                pass  # a byte-count update soon after the previous one for this layer
            elif self._seq + len(self._pending) < MAX_EVENTS:
                if layer:
                    if len(self._last_layer_line) >= MAX_THINNED_LAYERS:
                        self._last_layer_line.clear()
                    self._last_layer_line[layer] = now
                self._pending.append(line)
            if progress is not None:
                self._progress = (progress.current, progress.total)
            self._dirty = True
            due = now - self._last_flush >= PROGRESS_SECONDS
        if due:
            self.flush()

    def set_progress(self, current: int, total: int) -> None:
        with self._lock:
            self._progress = (current, total)
            self._dirty = True
            due = time.monotonic() - self._last_flush >= PROGRESS_SECONDS
        if due:
            self.flush()

    def flush(self, progress: Progress | None = None) -> None:
        """Write pending lines and progress to the record (from any thread)."""
        with self._flush_lock:
            with self._lock:
                if progress is not None:
                    self._progress = (progress.current, progress.total)
                    self._dirty = True
                self._last_flush = time.monotonic()
                if not self._dirty:
                    return
                pending, self._pending = self._pending, []
                first = self._seq + 1
                self._seq += len(pending)
                current = self._progress
                self._dirty = False
            if pending:
                self.store.add_events(self.id, first, pending)
            if current is not None:
                self.store.set_progress(self.id, *current)

    def flush_if_due(self) -> None:
        with self._lock:
            due = self._dirty and time.monotonic() - self._last_flush >= PROGRESS_SECONDS
        if due:
            self.flush()


class JobRunner:
    """The jobs of this process: threads, heartbeat, cancellation."""

    def __init__(
        self,
        store: JobStore,
        *,
        concurrency: int = 4,
        retention: float = 7 * 86400,
        max_queued: int = 32,
    ):
        self.store = store
        self.retention = retention
        self._bounds = (concurrency, max_queued)
        self._start_in_this_process()
        self._last_purge = 0.0
        _RUNNERS.add(self)
        os.register_at_fork(after_in_child=_restarter(weakref.ref(self)))

    def _start_in_this_process(self) -> None:
        """This process's identity, threads and jobs: none of a parent's survive a fork (an app
        built before gunicorn forks its workers runs each worker's jobs in that worker)."""
        self.worker = Worker.current()
        self.pool = JobPool(*self._bounds)
        self._active: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._monitor: threading.Thread | None = None

    # -- submitting

    def submit(
        self,
        kind: str,
        owner: str,
        target: str | None,
        run: Callable[[JobContext], dict[str, Any]],
        engine: str | None = None,
        engines: list[str] | None = None,
    ) -> dict[str, Any]:
        """Record a job and start it; returns the queued record at once.

        ``engines`` lists every engine the job touches when that is more than ``engine``.
        """
        self.maintain()
        self.pool.reserve()  # 429 TOO_MANY_JOBS past the bound, before anything is recorded
        try:
            job = self.store.create(
                kind, owner, target, self.worker, engine=engine, engines=engines
            )
        except BaseException:
            self.pool.release()
            raise
        ctx = JobContext(self.store, job)
        with self._lock:
            self._active[ctx.id] = ctx
        self.pool.submit(ctx.id, lambda: self._run(ctx, run))
        self._ensure_monitor()
        return job

    def _run(self, ctx: JobContext, run: Callable[[JobContext], dict[str, Any]]) -> None:
        try:
            if not self.store.start(ctx.id):
                return  # cancelled while queued
            try:
                with closing_on(ctx.on_cancel):
                    result = run(ctx)
            except BaseException as e:  # every failure is recorded
                self._fail(ctx, e)
                return
            self._flush(ctx)
            # A cancellation asked for (here or through another process) always wins, so that
            # a 202 to DELETE /v1/jobs/{id} never turns into a success.
            if ctx.cancelled.is_set() or not self.store.finish(
                ctx.id, "succeeded", result=result, unless_cancel_requested=True
            ):
                self.store.finish(ctx.id, "cancelled", error=cancelled_problem())
        except Exception:
            log.exception("job %s could not be recorded", ctx.id)
        finally:
            with self._lock:
                self._active.pop(ctx.id, None)

    def _fail(self, ctx: JobContext, error: BaseException) -> None:
        self._flush(ctx)
        if ctx.cancelled.is_set():
            self.store.finish(ctx.id, "cancelled", error=cancelled_problem())
        elif isinstance(error, BerthError):
            self.store.finish(ctx.id, "failed", error=error.to_problem())
        else:
            log.error("job %s (%s) failed unexpectedly", ctx.id, ctx.kind, exc_info=error)
            problem = Internal("The job failed unexpectedly; see the service log.").to_problem()
            self.store.finish(ctx.id, "failed", error=problem)

    @staticmethod
    def _flush(ctx: JobContext) -> None:
        try:
            ctx.flush()
        except Exception:
            log.warning("could not record the last progress of job %s", ctx.id, exc_info=True)

    # -- cancelling

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Ask for ``job_id`` to stop (whichever process runs it); the updated record."""
        job = self.store.request_cancel(job_id, cancelled_problem())
        self._drop_if_waiting(job_id)
        with self._lock:
            ctx = self._active.get(job_id)
        if ctx is not None:
            ctx.cancel()
        return job

    def _drop_if_waiting(self, job_id: str) -> None:
        """Free the queue place of a job cancelled before it started."""
        if self.pool.discard(job_id):
            with self._lock:
                self._active.pop(job_id, None)

    # -- health of other processes' jobs

    def maintain(self) -> None:
        """Fail jobs whose worker died; drop jobs older than the retention (at most once a
        minute). Called before reads and submissions, from any process."""
        self.store.reap(self.worker.host, is_alive, worker_lost_problem, STALE_SECONDS)
        now = time.time()
        if now - self._last_purge > 60:
            self._last_purge = now
            self.store.purge(now - self.retention)
            remove_orphans(self.store.path.parent / "spool")

    # -- monitor thread

    def _ensure_monitor(self) -> None:
        with self._lock:
            self._wake.set()
            if self._monitor is not None and self._monitor.is_alive():
                return
            self._monitor = threading.Thread(
                target=self._watch, name="berth-job-monitor", daemon=True
            )
            self._monitor.start()

    def _watch(self) -> None:
        last_beat = 0.0
        while True:
            with self._lock:
                ids = list(self._active)
                if not ids:
                    self._wake.clear()
            if not ids:
                self._wake.wait(timeout=HEARTBEAT_SECONDS)
                continue
            try:
                now = time.time()
                if now - last_beat >= HEARTBEAT_SECONDS:
                    self.store.heartbeat(ids, now)
                    last_beat = now
                for job_id in self.store.cancel_requests(ids):
                    with self._lock:
                        ctx = self._active.get(job_id)
                    if ctx is not None:
                        ctx.cancel()
                for job_id in self.store.not_queued(self.pool.waiting()):
                    self._drop_if_waiting(job_id)  # cancelled through another process
                with self._lock:
                    contexts = list(self._active.values())
                for ctx in contexts:
                    ctx.flush_if_due()
            except Exception:
                log.warning("job monitor failed; retrying", exc_info=True)
            time.sleep(MONITOR_SECONDS)

    def abandon(self, reason: str) -> None:
        """Fail this process's unfinished jobs (the process is exiting)."""
        with self._lock:
            contexts = list(self._active.values())
        for ctx in contexts:
            problem = JobWorkerLost(reason).to_problem()
            try:
                self.store.finish(ctx.id, "failed", error=problem)
            except Exception:
                pass


_RUNNERS: weakref.WeakSet[JobRunner] = weakref.WeakSet()


def _restarter(ref: weakref.ref[JobRunner]) -> Callable[[], None]:
    def restart() -> None:
        runner = ref()
        if runner is not None:
            runner._start_in_this_process()

    return restart


@atexit.register
def _abandon_all() -> None:
    for runner in list(_RUNNERS):
        runner.abandon(
            "The worker process running this job shut down before it finished "
            "(server stop or restart); the operation's outcome is unknown."
        )
