"""The targets' rows of a distribution: their states, bytes moved, outcome, as job events.

Each target has a row: ``pending`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``,
with the image id the target reports, the bytes moved to it, the duration, and the error (a
problem document). Row changes are recorded as job events, so that any worker process can show
them while the job runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.domain.times import rfc3339
from app.errors import BerthError, ImageIdMismatch, Internal
from app.jobs import JobCancelled, JobContext

log = logging.getLogger("berth.distribution")

ROW_STATES = ("pending", "running", "succeeded", "failed", "cancelled")
ROW_DONE = ("succeeded", "failed", "cancelled")

ROW_TICK_SECONDS = 1.0  # byte-count updates of one row reach the job record at most this often
MAX_TICKS = 5000  # byte-count updates per distribution (state changes are always recorded)


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
            row["started"] = rfc3339(time.time())
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
                row["finished"] = rfc3339(time.time())
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


def mismatch(name: str, found: str | None, expected: str) -> BerthError:
    return ImageIdMismatch(
        f"The engine '{name}' reports image {found or 'none'}, not the source's {expected}.",
        expected=expected,
        found=found,
    )


def unexpected(name: str, error: BaseException) -> BerthError:
    log.error("distribution to %s failed unexpectedly", name, exc_info=error)
    return Internal("The transfer failed unexpectedly; see the service log.")


def end_after(ctx: JobContext, rows: Rows, name: str, error: BaseException, done: int) -> None:
    """End ``name``'s row after ``error``: cancelled when the job was, else failed with it."""
    if isinstance(error, JobCancelled) or (
        isinstance(error, BerthError) and ctx.cancelled.is_set()
    ):
        rows.finish(name, "cancelled", done=done)
    elif isinstance(error, BerthError):
        rows.finish(name, "failed", done=done, error=error)
    else:
        rows.finish(name, "failed", done=done, error=unexpected(name, error))
