"""What happens on the engines and to jobs, told to every event stream of this process.

One ``EventHub`` per process gathers two sources into one bounded buffer:

* **image events** of the engines, handed over by the ``EventWatcher`` that already follows each
  engine for its metadata cache (``app.engine.events``): no stream opens a connection of its own
  to an engine, however many clients listen;
* **job state changes** (queued, running, and the end states), read by one thread polling the
  job store, which every process shares, so a job run by another worker is told too.

Each event's ``id`` is its time in nanoseconds (the engine's ``timeNano``; the job store's
time of the change), the same in every worker, so a client resuming with ``Last-Event-ID`` may
reconnect to any of them. The buffer keeps the last ``BUFFER_SIZE`` events; a client does not
hold a queue of its own but a position in that buffer, so a slow client costs no memory, and
one that falls behind by more than the buffer misses the oldest events rather than stalling
others. Events replayed by a watcher's resubscription are recognised and dropped.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from app.domain.times import rfc3339

log = logging.getLogger("berth.events")

BUFFER_SIZE = 2048
JOB_POLL_SECONDS = 0.5
# Job changes are polled again for this long: a change committed after a poll that already
# looked past its time is still seen (each is told once).
JOB_OVERLAP_SECONDS = 5.0
TERMINAL = ("succeeded", "failed", "cancelled")
IMAGE = "image"
JOB = "job"
TYPES = (IMAGE, JOB)


def image_event(engine: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    """A Berth event for an engine event about an image (a container ``commit`` included)."""
    kind = raw.get("Type")
    action = str(raw.get("Action") or raw.get("status") or "")
    if not (kind == "image" or (kind == "container" and action == "commit")):
        return None
    actor = raw.get("Actor") or {}
    attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    nanos = int(raw.get("timeNano") or int(raw.get("time") or 0) * 1_000_000_000)
    event = {
        "id": str(nanos),
        "type": IMAGE,
        "action": action,
        "engine": engine,
        "time": rfc3339(nanos / 1e9),
        "image": attributes.get("imageID") if kind == "container" else actor.get("ID"),
        "name": attributes.get("name") if kind == "image" else attributes.get("imageRef"),
        "attributes": attributes,
    }
    return event


def job_events(job: dict[str, Any], since: float) -> list[dict[str, Any]]:
    """The state changes of ``job`` after ``since``: queued, running, its end state."""
    changes = [("queued", job.get("created")), ("running", job.get("started"))]
    if job.get("state") in TERMINAL:
        changes.append((job["state"], job.get("finished")))
    events = []
    for state, at in changes:
        if at is None or at <= since:
            continue
        nanos = int(at * 1_000_000_000)
        events.append(
            {
                "id": str(nanos),
                "type": JOB,
                "action": state,
                "engine": job.get("engine"),
                "engines": list(job.get("engines") or []),
                "time": rfc3339(at),
                "job": {"id": job["id"], "kind": job["kind"], "target": job.get("target")},
                "owner": job.get("owner"),
            }
        )
    return events


def _key(event: dict[str, Any]) -> tuple[Any, ...]:
    if event["type"] == JOB:
        return (JOB, event["job"]["id"], event["action"])
    return (IMAGE, event["engine"], event["id"], event["action"], event["image"])


class EventHub:
    """The process's event buffer; ``subscribe`` gives a client its view of it."""

    def __init__(
        self,
        follow_engine: Callable[[str, Callable[[str, dict[str, Any]], None]], None],
        job_changes: Callable[[float], list[dict[str, Any]]],
        size: int = BUFFER_SIZE,
        job_poll: float = JOB_POLL_SECONDS,
    ) -> None:
        self._follow_engine = follow_engine
        self._job_changes = job_changes
        self.size = size
        self.job_poll = job_poll
        self._reset()
        _HUBS.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._events: deque[tuple[int, dict[str, Any]]] = deque()
        self._keys: set[tuple[Any, ...]] = set()
        self._seq = 0
        self._followed: set[str] = set()
        self._poller: threading.Thread | None = None
        self.closed = False

    def close(self) -> None:
        """The process is stopping: every stream ends after what it was sending."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def follow(self, engines: Iterable[str]) -> None:
        """Make sure ``engines`` are followed, and jobs polled (started once per process)."""
        for name in engines:
            if name not in self._followed:
                self._followed.add(name)
                self._follow_engine(name, self._on_engine_event)
        with self._cond:
            if self._poller is None:
                self._poller = threading.Thread(
                    target=self._poll_jobs, name="berth-job-events", daemon=True
                )
                self._poller.start()

    def publish(self, event: dict[str, Any]) -> None:
        """Add ``event`` unless it is buffered already, and wake every waiting stream."""
        key = _key(event)
        with self._cond:
            if key in self._keys:
                return
            if len(self._events) >= self.size:
                _, oldest = self._events.popleft()
                self._keys.discard(_key(oldest))
            self._seq += 1
            self._events.append((self._seq, event))
            self._keys.add(key)
            self._cond.notify_all()

    def start(self, last_event_id: str | None) -> tuple[int, list[dict[str, Any]]]:
        """Where a new stream starts: the buffered events after ``last_event_id`` (none without
        it), and the position to wait from."""
        with self._cond:
            backlog: list[dict[str, Any]] = []
            if last_event_id is not None:
                after = int(last_event_id)
                backlog = [event for _, event in self._events if int(event["id"]) > after]
            return self._seq, backlog

    def wait(self, position: int, timeout: float) -> tuple[int, list[dict[str, Any]]]:
        """The events after ``position`` (waiting up to ``timeout`` for one), and the new one."""
        with self._cond:
            if self._seq <= position and not self.closed:
                self._cond.wait(timeout)
            first = self._events[0][0] if self._events else self._seq + 1
            skip = max(0, position + 1 - first)
            fresh = [event for _, event in itertools.islice(self._events, skip, None)]
            return self._seq, fresh

    def _on_engine_event(self, engine: str, raw: dict[str, Any]) -> None:
        event = image_event(engine, raw)
        if event is not None:
            self.publish(event)

    def _poll_jobs(self) -> None:
        since = time.time() - JOB_OVERLAP_SECONDS
        while True:
            started = time.time()
            try:
                for job in self._job_changes(since):
                    for event in job_events(job, since):
                        self.publish(event)
            except Exception:  # the store may be busy or gone for a moment; try again
                log.warning("cannot read job changes for the event stream", exc_info=True)
            else:
                since = started - JOB_OVERLAP_SECONDS
            time.sleep(self.job_poll)


_HUBS: weakref.WeakSet[EventHub] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for hub in list(_HUBS):  # no thread survives a fork: start over, lazily
        hub._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
