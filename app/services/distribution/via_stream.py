"""A distribution as a stream, for engines that reach no registry: ``save`` | ``load``.

The source's ``docker save`` is read once per batch of PARALLELISM targets and fed, chunk by
chunk, into ``docker load`` on each (a tee with one bounded queue per target: the source builds
the archive once per batch, nothing is written to disk and at most ``TEE_DEPTH`` chunks per
target are held in memory). The price is that a slow target slows its batch; a target that
stops reading is dropped after ``FEED_STALL_SECONDS``. The load is the shared use case
(``app.services.load``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from app.domain.progress import consume
from app.errors import BerthError, EngineError
from app.jobs import JobCancelled, JobContext
from app.services.distribution.planning import Plan
from app.services.distribution.rows import Rows, end_after, mismatch, unexpected
from app.services.load import Load
from app.services.local_tags import lent_names

TEE_DEPTH = 4  # chunks (1 MiB each) queued per stream target
FEED_STALL_SECONDS = 120.0  # a stream target that takes no chunk for this long is dropped
_POLL = 0.1
_END = object()


class Feed:
    """One stream target's share of the source's archive: a bounded queue of chunks."""

    def __init__(self, name: str, depth: int = TEE_DEPTH) -> None:
        self.name = name
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.ended = threading.Event()  # the target's load ended (either way)
        self.dropped = threading.Event()  # the target stopped reading: no more chunks for it
        self.last_taken = time.monotonic()
        self.sent = 0

    @property
    def open(self) -> bool:
        return not (self.ended.is_set() or self.dropped.is_set())

    def put(self, item: Any, stop: threading.Event) -> bool:
        """Queue ``item``. While the queue is full, give up when the load ended, when ``stop``
        is set, or when the target has taken nothing for FEED_STALL_SECONDS (it is dropped)."""
        while self.open:
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                if stop.is_set():
                    return False
                if time.monotonic() - self.last_taken > FEED_STALL_SECONDS:
                    self.dropped.set()
        return False

    def stall_error(self) -> BerthError:
        return EngineError(
            f"The engine '{self.name}' took no data for {FEED_STALL_SECONDS:g} s; it was "
            "dropped from the distribution."
        )

    def chunks(self, ctx: JobContext, moved: Callable[[int], None]) -> Iterator[bytes]:
        """The chunks, as the target's load reads them. A failure (the source's, a
        cancellation, being dropped) is raised here, which aborts the upload: the engine sees
        a truncated archive and keeps nothing."""
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                item = None
            if ctx.cancelled.is_set():
                raise JobCancelled("The job was cancelled before it finished.")
            if item is None:
                if self.dropped.is_set():
                    raise self.stall_error()
                continue
            self.last_taken = time.monotonic()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            self.sent += len(item)
            moved(self.sent)
            yield item


def load_into(ctx: JobContext, plan: Plan, name: str, target: Any, feed: Feed, rows: Rows) -> None:
    """One stream target: ``docker load`` of what its feed brings; check the image id."""
    try:
        if ctx.cancelled.is_set() or not rows.start(name):
            rows.finish(name, "cancelled")
            return
        load = Load(target, feed.chunks(ctx, lambda done: rows.moved(name, done)))
        progress = load.progress()
        # A load moves the names it carries: the target's own names are given back after it.
        with lent_names(target, plan.image_id, plan.names, keep_new=True):
            for _ in consume(load.events(), progress):
                pass
            ids = load.image_ids(progress)
        if plan.image_id not in ids:
            raise mismatch(name, ids[0] if ids else None, plan.image_id)
    except Exception as e:
        end_after(ctx, rows, name, e, feed.sent)
    else:
        rows.finish(name, "succeeded", image_id=plan.image_id, done=feed.sent)
    finally:
        feed.ended.set()


def _source_failure(plan: Plan, error: BerthError) -> BerthError:
    return BerthError(
        f"The source engine '{plan.source}' failed: {error.detail}",
        status=error.status,
        code=error.code,
        title=error.title,
    )


def _feed_batch(ctx: JobContext, plan: Plan, source: Any, feeds: list[Feed]) -> None:
    """Read the source's ``docker save`` once and hand every chunk to each open feed."""
    final: Any = _END
    stream = None
    try:
        stream = source.save_images([plan.save_name])
        for chunk in stream:
            if ctx.cancelled.is_set():
                final = JobCancelled("The job was cancelled before it finished.")
                break
            open_feeds = [feed for feed in feeds if feed.open]
            if not open_feeds:
                break  # every target failed: stop reading
            for feed in open_feeds:
                feed.put(chunk, ctx.cancelled)
    except BerthError as e:
        final = _source_failure(plan, e)
    except Exception as e:
        final = unexpected(plan.source, e)
    finally:
        if stream is not None:
            stream.close()
        for feed in feeds:
            feed.put(final, ctx.cancelled)


def via_stream(ctx: JobContext, plan: Plan, pool: Any, rows: Rows, parallelism: int) -> None:
    """Batches of ``parallelism`` targets, each batch fed by one save of the source."""
    source = pool.get(plan.source)
    batch = max(1, parallelism)
    for first in range(0, len(plan.targets), batch):
        if ctx.cancelled.is_set():
            break
        feeds = [Feed(name) for name in plan.targets[first : first + batch]]
        threads = [
            threading.Thread(
                target=ctx.call,
                args=(load_into, ctx, plan, feed.name, pool.get(feed.name), feed, rows),
                name=f"berth-dist-{ctx.id[:8]}-{feed.name}",
                daemon=True,
            )
            for feed in feeds
        ]
        for thread in threads:
            thread.start()
        _feed_batch(ctx, plan, source, feeds)
        for feed, thread in zip(feeds, threads, strict=True):
            while thread.is_alive() and not feed.dropped.is_set():
                thread.join(timeout=1.0)
            if feed.dropped.is_set():
                # Its thread ends once the engine reads again (or its connection breaks).
                rows.finish(feed.name, "failed", done=feed.sent, error=feed.stall_error())
