"""Distribution: one image from a source engine to many target engines, as one job.

Two ways to move it:

* **via a registry** — the source pushes the image once (``docker push``), then every target
  pulls it *by the digest the registry confirmed*, ``BERTH_DISTRIBUTION_PARALLELISM`` targets at
  a time, and is tagged with the registry reference (and the image's own name, when it was
  named). Layers a target already has are not moved again.
* **as a stream** — for engines that reach no registry: the source's ``docker save`` is read
  once and fed, chunk by chunk, into ``docker load`` on up to PARALLELISM targets at once (a tee
  with one bounded queue per target: the source builds the archive once, nothing is written to
  disk and at most ``TEE_DEPTH`` chunks per target are held in memory). Reading one save for
  all was measured faster than one save per target (README, "Distribution"); the price is that a
  slow target slows its batch, and a target that stops reading is dropped after
  ``FEED_STALL_SECONDS``.

Each target has a row: ``pending`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``,
with the image id the target reports, the bytes moved to it, the duration, and the error (a
problem document). A row succeeds only when the target reports the *source's* image id. Row
changes are recorded as job events, so that any worker process can show them while the job runs;
the job's result (or its error, when some target failed) holds the final rows. A distribution
with a failed target is a failed job, whose problem says which targets have the image and which
do not: partial success is never reported as success.

Plain Python over engines taken from the pool: no flask, no docker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.domain.deletion import familiar
from app.domain.progress import Progress, consume
from app.domain.references import Reference, is_image_id, parse_reference
from app.domain.tar_framing import classify_archive_error, parse_load_messages
from app.errors import (
    BerthError,
    EngineError,
    EngineNotFound,
    Forbidden,
    Internal,
    ValidationFailed,
)
from app.jobs import JobCancelled, JobContext
from app.registry.client import RegistryClient
from app.registry.policy import OutboundPolicy
from app.services import push as push_service
from app.services.local_tags import free_names, lent_names, tag_for

log = logging.getLogger("berth.distribution")

VIA_REGISTRY = "registry"
VIA_STREAM = "stream"
ROW_STATES = ("pending", "running", "succeeded", "failed", "cancelled")
ROW_DONE = ("succeeded", "failed", "cancelled")

ROW_TICK_SECONDS = 1.0  # byte-count updates of one row reach the job record at most this often
MAX_TICKS = 5000  # byte-count updates per distribution (state changes are always recorded)
TEE_DEPTH = 4  # chunks (1 MiB each) queued per stream target
FEED_STALL_SECONDS = 120.0  # a stream target that takes no chunk for this long is dropped
_POLL = 0.1
_END = object()


# --------------------------------------------------------------------------- planning


def resolve_engines(
    configured: list[str],
    default: str,
    source: str | None,
    targets: list[str] | str,
    allowed: Callable[[str], bool],
) -> tuple[str, list[str]]:
    """The source engine and the target engines of a request, checked before anything starts.

    ``targets`` is a list of names or ``"all"`` (every configured engine but the source). Raises
    404 ENGINE_NOT_FOUND for a name not configured, 403 ENGINE_FORBIDDEN (naming the engine)
    for one the token may not use, 400 when no target remains or the source is a target.
    """
    source = source or default
    if targets == "all":
        names = [name for name in configured if name != source]
    else:
        names = list(dict.fromkeys(targets))
        if source in names:
            raise ValidationFailed(
                f"The source engine '{source}' cannot also be a target.",
                errors={"target_engines": [f"'{source}' is the source engine."]},
            )
    for name in [source, *names]:
        if name not in configured:
            raise EngineNotFound(f"No engine named '{name}' is configured.", engine=name)
    for name in [source, *names]:
        if not allowed(name):
            raise Forbidden(
                f"This token may not use the engine '{name}'.", code="ENGINE_FORBIDDEN", engine=name
            )
    if not names:
        raise ValidationFailed(
            "There is no target engine: the only engine configured is the source.",
            errors={"target_engines": ["No engine besides the source."]},
        )
    return source, names


def source_names(image: str, details: dict[str, Any]) -> tuple[str, list[str]]:
    """What to save from the source for ``image``, and the names the targets should carry.

    A tagged name (a bare name means ``:latest``) is saved by that name and carried over; an
    id, a digest reference, or a short id saves the image by id, without names.
    """
    image_id = details["Id"]
    if is_image_id(image):
        return image_id, []
    ref = parse_reference(image)
    if ref.digest:
        return image_id, []
    tagged = familiar(str(ref.with_default_tag()))
    if tagged in (details.get("RepoTags") or []):
        return tagged, [tagged]
    return image_id, []  # a bare hex word the engine resolved as a short id


@dataclass(frozen=True)
class Plan:
    """What one distribution does; everything the job needs except credentials."""

    image: str
    image_id: str
    size: int
    save_name: str
    names: list[str]
    source: str
    targets: list[str]
    via: str
    registry: Reference | None = None

    def document(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_id": self.image_id,
            "source_engine": self.source,
            "via": self.via,
            "registry": str(self.registry) if self.registry else None,
            "targets": list(self.targets),
        }


def plan_distribution(
    image: str,
    details: dict[str, Any],
    source: str,
    targets: list[str],
    via: str,
    registry: str | None = None,
) -> Plan:
    """The plan for ``image`` (inspected on the source as ``details``)."""
    save_name, names = source_names(image, details)
    reference = None
    if via == VIA_REGISTRY:
        assert registry is not None
        reference = parse_reference(registry).with_default_tag()
    return Plan(
        image=image,
        image_id=details["Id"],
        size=int(details.get("Size") or 0),
        save_name=save_name,
        names=names,
        source=source,
        targets=list(targets),
        via=via,
        registry=reference,
    )


# --------------------------------------------------------------------------- rows


def _stamp(value: float | None) -> str | None:
    if value is None:
        return None
    text = datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def new_row(engine: str) -> dict[str, Any]:
    return {
        "engine": engine,
        "state": "pending",
        "image_id": None,
        "bytes": 0,
        "duration": None,
        "started": None,
        "finished": None,
        "error": None,
    }


@dataclass
class _Clock:
    started: float = field(default_factory=time.monotonic)
    last_tick: float = 0.0
    total: int = 0


class Rows:
    """The targets' rows, shared by the threads working on them; each change is recorded.

    State changes go to the job's events at once (the job flushes them within half a second);
    byte counts at most every ROW_TICK_SECONDS per row. A row that ended never changes again.
    """

    def __init__(self, targets: Iterable[str], ctx: JobContext, estimate: int = 0) -> None:
        self._rows = {name: new_row(name) for name in targets}
        self._clocks: dict[str, _Clock] = {}
        self._ctx = ctx
        self._estimate = estimate
        self._lock = threading.Lock()
        self._ticks = 0
        self.push_bytes = 0

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._rows.values()]

    def names(self, *states: str) -> list[str]:
        with self._lock:
            return [name for name, row in self._rows.items() if row["state"] in states]

    def start(self, name: str) -> bool:
        """pending → running; False if the row already ended (cancelled meanwhile)."""
        with self._lock:
            row = self._rows[name]
            if row["state"] != "pending":
                return False
            row["state"] = "running"
            row["started"] = _stamp(time.time())
            self._clocks[name] = _Clock(total=self._estimate)
            line = self._line(row)
        self._emit(line)
        return True

    def moved(self, name: str, done: int, total: int | None = None) -> None:
        """Bytes moved to ``name`` so far (and, when known, how many there are in all)."""
        now = time.monotonic()
        with self._lock:
            row, clock = self._rows[name], self._clocks.get(name)
            if row["state"] != "running" or clock is None:
                return
            row["bytes"] = done
            if total:
                clock.total = total
            if now - clock.last_tick < ROW_TICK_SECONDS or self._ticks >= MAX_TICKS:
                line = None
            else:
                clock.last_tick = now
                self._ticks += 1
                line = self._line(row)
        if line is not None:
            self._emit(line)
        else:
            self._progress()

    def finish(
        self,
        name: str,
        state: str,
        *,
        image_id: str | None = None,
        done: int | None = None,
        error: BerthError | None = None,
    ) -> None:
        """End a row (``succeeded``, ``failed`` or ``cancelled``); an ended row stays as it is."""
        assert state in ROW_DONE
        with self._lock:
            row = self._rows[name]
            if row["state"] in ROW_DONE:
                return
            clock = self._clocks.get(name)
            row["state"] = state
            row["image_id"] = image_id
            if done is not None:
                row["bytes"] = done
            if clock is not None:
                row["duration"] = round(time.monotonic() - clock.started, 3)
                row["finished"] = _stamp(time.time())
            row["error"] = error.to_problem() if error is not None else None
            line = self._line(row)
        self._emit(line)

    def end_unfinished(self, state: str, error: BerthError | None = None) -> None:
        for name in self.names("pending", "running"):
            self.finish(name, state, error=error)

    def _line(self, row: dict[str, Any]) -> dict[str, Any]:
        status = f"{row['engine']}: {row['state']}"
        if row["state"] == "running" and row["bytes"]:
            status += f", {row['bytes']} bytes"
        elif row["error"]:
            status += f" ({row['error']['code']})"
        return {"status": status, "engine": row["engine"], "row": dict(row)}

    def _emit(self, line: dict[str, Any]) -> None:
        self._ctx.record(line)
        self._progress()

    def _progress(self) -> None:
        with self._lock:
            current = self.push_bytes + sum(row["bytes"] for row in self._rows.values())
            total = self.push_bytes
            for name, row in self._rows.items():
                clock = self._clocks.get(name)
                total += max(row["bytes"], clock.total if clock else self._estimate)
        self._ctx.set_progress(current, total)


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Engine names by outcome: ``succeeded``, ``failed``, ``cancelled``, ``in_progress``."""
    summary: dict[str, list[str]] = {
        "succeeded": [],
        "failed": [],
        "cancelled": [],
        "in_progress": [],
    }
    for row in rows:
        key = row["state"] if row["state"] in ROW_DONE else "in_progress"
        summary[key].append(row["engine"])
    return summary


class PullBytes:
    """Layer bytes a pull downloaded, from its normalised progress lines.

    ``Progress.current`` goes back down while layers are extracted (the engine counts the
    extraction from zero again), so a row counts each layer's download instead: what
    ``Downloading`` reached, and the layer's size once it is extracted. Layers the engine
    already had cost nothing.
    """

    def __init__(self) -> None:
        self._done: dict[str, int] = {}
        self._sizes: dict[str, int] = {}

    def feed(self, line: dict[str, Any]) -> None:
        layer, status = line.get("layer"), line.get("status")
        current, total = line.get("current"), line.get("total")
        if not layer:
            return
        if isinstance(total, int) and total > 0:
            self._sizes[layer] = max(self._sizes.get(layer, 0), total)
        if status == "Downloading" and isinstance(current, int):
            value = current
        elif status in ("Extracting", "Download complete", "Pull complete"):
            value = self._sizes.get(layer, 0)
        else:
            return
        self._done[layer] = max(self._done.get(layer, 0), value)

    @property
    def done(self) -> int:
        return sum(self._done.values())

    @property
    def total(self) -> int:
        return sum(self._sizes.values())


def _mismatch(name: str, found: str | None, expected: str) -> BerthError:
    return BerthError(
        f"The engine '{name}' reports image {found or 'none'}, not the source's {expected}.",
        status=502,
        code="IMAGE_ID_MISMATCH",
        title="Image differs from the source",
        expected=expected,
        found=found,
    )


def _unexpected(name: str, error: BaseException) -> BerthError:
    log.error("distribution to %s failed unexpectedly", name, exc_info=error)
    return Internal("The transfer failed unexpectedly; see the service log.")


# --------------------------------------------------------------------------- via registry


def _push(
    ctx: JobContext,
    plan: Plan,
    source: Any,
    rows: Rows,
    auth: dict[str, Any] | None,
    verifier: RegistryClient | None,
) -> dict[str, Any]:
    """Push the image once from the source; ``{"reference", "digest", "bytes", "duration"}``."""
    assert plan.registry is not None
    started = time.monotonic()
    push_plan = push_service.plan_push(plan.image_id, str(plan.registry))
    push_service.prepare(source, push_plan)
    # The source's local tags are as they were once the push ends (app.services.local_tags).
    events = push_service.TargetPush(source, push_plan, plan.image_id, auth)
    ctx.on_cancel(events.abort)
    progress = Progress()
    try:
        ctx.check()
        for line in consume(events, progress):
            ctx.check()
            ctx.record({**line, "engine": plan.source})
            rows.push_bytes = progress.current
        ctx.check()
    finally:
        events.close()
    outcome = push_service.outcome(push_plan, plan.image_id, progress, verifier)
    pushed = {
        "reference": outcome["reference"],
        "digest": outcome["digest"],
        "bytes": progress.current,
        "duration": round(time.monotonic() - started, 3),
        "error": None,
    }
    ctx.record({"status": f"Pushed {outcome['reference']}@{outcome['digest']}", "push": pushed})
    ctx.flush()
    return pushed


def _pull_to(
    ctx: JobContext,
    plan: Plan,
    name: str,
    target: Any,
    rows: Rows,
    digest: str,
    auth: dict[str, Any] | None,
) -> None:
    """One target: pull ``repository@digest``, check the image id, tag it; the row records it."""
    assert plan.registry is not None
    if ctx.cancelled.is_set() or not rows.start(name):
        rows.finish(name, "cancelled")
        return
    repository, tag = plan.registry.repository, str(plan.registry.tag)
    progress, moved = Progress(), PullBytes()
    try:
        events = target.pull_image(repository, digest, credentials=auth)
        try:
            for line in consume(events, progress):
                ctx.check()
                moved.feed(line)
                rows.moved(name, moved.done, moved.total)
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()  # abandons the engine's stream (and so the pull) when cut short
        ctx.check()
        progress.raise_for_error()
        pulled = target.pulled_image(f"{repository}@{digest}", repository)
        if pulled["id"] != plan.image_id:
            raise _mismatch(name, pulled["id"], plan.image_id)
        # Names the target uses for another image stay as they are (the event says which).
        free, taken = free_names(target, pulled["id"], [f"{repository}:{tag}", *plan.names])
        tag_for(target, pulled["id"], free)
        if taken:
            ctx.record({"status": f"{name}: kept its own {', '.join(taken)}", "engine": name})
    except JobCancelled:
        rows.finish(name, "cancelled", done=moved.done)
    except BerthError as e:
        if ctx.cancelled.is_set():
            rows.finish(name, "cancelled", done=moved.done)
        else:
            rows.finish(name, "failed", done=moved.done, error=e)
    except Exception as e:
        rows.finish(name, "failed", done=moved.done, error=_unexpected(name, e))
    else:
        rows.finish(name, "succeeded", image_id=pulled["id"], done=moved.done)


def _via_registry(
    ctx: JobContext,
    plan: Plan,
    pool: Any,
    rows: Rows,
    auth: dict[str, Any] | None,
    verifier: RegistryClient | None,
    parallelism: int,
) -> dict[str, Any]:
    try:
        pushed = _push(ctx, plan, pool.get(plan.source), rows, auth, verifier)
    except BerthError as e:
        if ctx.cancelled.is_set():
            raise JobCancelled("The job was cancelled before it finished.") from None
        rows.end_unfinished("failed", e)
        raise
    workers = max(1, min(parallelism, len(plan.targets)))
    with ThreadPoolExecutor(workers, thread_name_prefix=f"berth-dist-{ctx.id[:8]}") as pool_:
        for name in plan.targets:
            target, digest = pool.get(name), pushed["digest"]
            pool_.submit(ctx.call, _pull_to, ctx, plan, name, target, rows, digest, auth)
    return pushed


# --------------------------------------------------------------------------- as a stream


class _Feed:
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


def _load_into(
    ctx: JobContext, plan: Plan, name: str, target: Any, feed: _Feed, rows: Rows
) -> None:
    """One stream target: ``docker load`` of what its feed brings; check the image id."""
    try:
        if ctx.cancelled.is_set() or not rows.start(name):
            rows.finish(name, "cancelled")
            return
        progress = Progress(classify=classify_archive_error)
        # A load moves the names it carries: the target's own names are given back after it.
        with lent_names(target, plan.image_id, plan.names, keep_new=True):
            events = target.load_images(feed.chunks(ctx, lambda done: rows.moved(name, done)))
            for _ in consume(events, progress):
                pass
            progress.raise_for_error()
            report = parse_load_messages(progress.messages)
            ids = target.resolve_image_ids(report.references) + report.image_ids
        if plan.image_id not in ids:
            raise _mismatch(name, ids[0] if ids else None, plan.image_id)
    except JobCancelled:
        rows.finish(name, "cancelled", done=feed.sent)
    except BerthError as e:
        if ctx.cancelled.is_set():
            rows.finish(name, "cancelled", done=feed.sent)
        else:
            rows.finish(name, "failed", done=feed.sent, error=e)
    except Exception as e:
        rows.finish(name, "failed", done=feed.sent, error=_unexpected(name, e))
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


def _feed_batch(ctx: JobContext, plan: Plan, source: Any, feeds: list[_Feed]) -> None:
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
        final = _unexpected(plan.source, e)
    finally:
        if stream is not None:
            stream.close()
        for feed in feeds:
            feed.put(final, ctx.cancelled)


def _via_stream(ctx: JobContext, plan: Plan, pool: Any, rows: Rows, parallelism: int) -> None:
    """Batches of ``parallelism`` targets, each batch fed by one save of the source."""
    source = pool.get(plan.source)
    batch = max(1, parallelism)
    for first in range(0, len(plan.targets), batch):
        if ctx.cancelled.is_set():
            break
        feeds = [_Feed(name) for name in plan.targets[first : first + batch]]
        threads = [
            threading.Thread(
                target=ctx.call,
                args=(_load_into, ctx, plan, feed.name, pool.get(feed.name), feed, rows),
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


# --------------------------------------------------------------------------- the job


def run_distribution(
    ctx: JobContext,
    plan: Plan,
    pool: Any,
    *,
    auth: dict[str, Any] | None = None,
    verifier: RegistryClient | None = None,
    parallelism: int = 4,
    outbound: OutboundPolicy,
) -> dict[str, Any]:
    """Run ``plan`` as the job ``ctx``: the result document, or a BerthError saying which
    targets have the image and which do not (DISTRIBUTION_PARTIAL or DISTRIBUTION_FAILED).

    ``auth`` (registry credentials, via registry) lives only in this call's closure. The
    registry must pass ``outbound`` before any engine is asked to push or pull.
    """
    rows = Rows(plan.targets, ctx, estimate=plan.size)
    targets = ", ".join(plan.targets)
    how = f"registry {plan.registry}" if plan.registry else "stream"
    ctx.record(
        {
            "status": f"Distributing {plan.image} from {plan.source} to {targets} via {how}",
            "distribution": plan.document(),
        }
    )
    ctx.flush()
    pushed = None
    try:
        if plan.via == VIA_REGISTRY:
            assert plan.registry is not None
            try:
                outbound.check(plan.registry.registry)
            except BerthError as e:
                rows.end_unfinished("failed", e)
                raise
            pushed = _via_registry(ctx, plan, pool, rows, auth, verifier, parallelism)
        else:
            _via_stream(ctx, plan, pool, rows, parallelism)
    except JobCancelled:
        rows.end_unfinished("cancelled")
        raise
    except BerthError as e:  # the push failed: no target was attempted
        failed_push = {"reference": str(plan.registry), "error": e.to_problem()}
        raise _incomplete(plan, rows.snapshot(), failed_push, cause=e) from None
    if ctx.cancelled.is_set():
        rows.end_unfinished("cancelled")
        raise JobCancelled("The job was cancelled before it finished.")
    rows.end_unfinished("failed", Internal("The transfer ended without an outcome."))
    snapshot = rows.snapshot()
    if any(row["state"] != "succeeded" for row in snapshot):
        raise _incomplete(plan, snapshot, pushed)
    return {**plan.document(), "push": pushed, "engines": snapshot, **summarise(snapshot)}


def _incomplete(
    plan: Plan,
    snapshot: list[dict[str, Any]],
    pushed: dict[str, Any] | None,
    cause: BerthError | None = None,
) -> BerthError:
    summary = summarise(snapshot)
    partial = bool(summary["succeeded"])
    if cause is not None:
        detail = (
            f"The push of {plan.image} from '{plan.source}' to {plan.registry} failed "
            f"({cause.code}: {cause.detail}); no engine received the image."
        )
    else:
        reasons = []
        for row in snapshot:
            if row["state"] != "succeeded":
                error = row["error"] or {}
                reason = f"{error.get('code')}: {error.get('detail')}" if error else row["state"]
                reasons.append(f"{row['engine']} ({reason})")
        detail = (
            f"{len(reasons)} of {len(snapshot)} target engines did not get {plan.image}: "
            + "; ".join(reasons)
            + "."
        )
        if partial:
            detail += f" These have it: {', '.join(summary['succeeded'])}."
    return BerthError(
        detail,
        status=502,
        code="DISTRIBUTION_PARTIAL" if partial else "DISTRIBUTION_FAILED",
        title="Distribution partly failed" if partial else "Distribution failed",
        partial=partial,
        **plan.document(),
        push=pushed,
        engines=snapshot,
        **summary,
    )


# --------------------------------------------------------------------------- the view


def distribution_view(
    job: dict[str, Any], events: Iterable[dict[str, Any]], plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A distribution as the API shows it, from its job record and events.

    While the job runs, the rows come from its events (any worker can read them); once it
    ended, from its result or error, which hold the final rows. Rows a dead or cancelled job
    left unfinished are shown as it ended them.
    """
    rows: dict[str, dict[str, Any]] = {}
    pushed = None
    if plan is not None:
        rows = {name: new_row(name) for name in plan["targets"]}
    for line in events:
        if "distribution" in line:
            plan = line["distribution"]
            rows = {name: new_row(name) for name in plan["targets"]} | rows
        elif "row" in line and isinstance(line["row"], dict):
            rows[line["row"]["engine"]] = line["row"]
        elif "push" in line:
            pushed = line["push"]
    final = job.get("result") or job.get("error") or {}
    if isinstance(final.get("engines"), list):
        rows = {row["engine"]: row for row in final["engines"]}
        pushed = final.get("push", pushed)
        plan = {
            "image": final.get("image"),
            "image_id": final.get("image_id"),
            "source_engine": final.get("source_engine"),
            "via": final.get("via"),
            "registry": final.get("registry"),
            "targets": final.get("targets") or list(rows),
        }
    if job["state"] in ("failed", "cancelled"):
        ended = "cancelled" if job["state"] == "cancelled" else "failed"
        for name, row in rows.items():
            if row["state"] not in ROW_DONE:
                error = None if ended == "cancelled" else job.get("error")
                rows[name] = {**row, "state": ended, "error": error}
    plan = plan or {}
    listed = list(rows.values())
    summary = summarise(listed)
    return {
        "image": plan.get("image") or job.get("target"),
        "image_id": plan.get("image_id"),
        "source_engine": plan.get("source_engine") or job.get("engine"),
        "via": plan.get("via"),
        "registry": plan.get("registry"),
        "push": pushed,
        "engines": listed,
        "summary": summary,
        "partial": job["state"] == "failed" and bool(summary["succeeded"]),
    }
