"""Job records in SQLite, shared by every worker process of one server.

One file (``jobs.sqlite3`` under ``BERTH_DATA_DIR``) in WAL mode holds the jobs and their
progress events. Any process can answer for any job; only the process running a job writes its
progress. State changes are conditional updates (``WHERE state IN (...)``), so two processes can
never both finish, cancel or reap the same job. Records hold what was asked (kind, target,
engine), by whom (the token's name), the outcome and progress; never credentials.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from app.jobs.workers import Worker

DB_NAME = "jobs.sqlite3"
ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
STATES = ACTIVE + TERMINAL

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    target TEXT,
    engine TEXT,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    current INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    worker_host TEXT NOT NULL,
    worker_pid INTEGER NOT NULL,
    worker_started TEXT,
    heartbeat REAL NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    engines TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""

_COLUMNS = (
    "id, kind, owner, target, engine, state, created, started, finished, current, total, "
    "result, error, worker_host, worker_pid, worker_started, heartbeat, cancel_requested, "
    "engines"
)


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    job = dict(row)
    for key in ("result", "error"):
        job[key] = json.loads(job[key]) if job[key] else None
    job["cancel_requested"] = bool(job["cancel_requested"])
    job["engines"] = json.loads(job["engines"]) if job["engines"] else _engines_of(job["engine"])
    return job


def _engines_of(engine: str | None) -> list[str]:
    return [engine] if engine else []


def _add_engines_column(db: sqlite3.Connection) -> None:
    """Files made before the ``engines`` column (every engine a job touches) get it."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if "engines" not in columns:
        try:
            db.execute("ALTER TABLE jobs ADD COLUMN engines TEXT")
        except sqlite3.OperationalError:  # another process added it meanwhile
            pass


class JobStore:
    """SQLite-backed job records (thread-safe; one connection per thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._init_lock = threading.Lock()
        self._initialised = False

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> JobStore:
        return cls(Path(data_dir) / DB_NAME)

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if not self._initialised:
                with self._init_lock:
                    if not self._initialised:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                        setup = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                        try:
                            setup.execute("PRAGMA journal_mode=WAL")
                            setup.executescript(_SCHEMA)
                            _add_engines_column(setup)
                        finally:
                            setup.close()
                        try:
                            self.path.chmod(0o600)
                        except OSError:
                            pass
                        self._initialised = True
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- records

    def create(
        self,
        kind: str,
        owner: str,
        target: str | None,
        worker: Worker,
        engine: str | None = None,
        now: float | None = None,
        engines: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """A queued job; ``engines`` lists every engine it touches (default: ``engine``)."""
        now = time.time() if now is None else now
        job_id = uuid.uuid4().hex
        touched = list(dict.fromkeys(engines)) if engines is not None else _engines_of(engine)
        self._db().execute(
            "INSERT INTO jobs (id, kind, owner, target, engine, state, created, worker_host, "
            "worker_pid, worker_started, heartbeat, engines) "
            "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            (job_id, kind, owner, target, engine, now)
            + (worker.host, worker.pid, worker.started, now, json.dumps(touched)),
        )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._db().execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row(row)

    def changed_since(self, since: float) -> list[dict[str, Any]]:
        """Jobs created, started or finished after ``since`` (for the events stream)."""
        where = "created > ? OR started > ? OR finished > ?"
        rows = self._db().execute(f"SELECT {_COLUMNS} FROM jobs WHERE {where}", (since,) * 3)
        return [_row(row) for row in rows.fetchall()]

    def count_by_state(self) -> dict[str, int]:
        """How many jobs each state holds, every state named (the ``berth_jobs`` gauge)."""
        rows = self._db().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {**dict.fromkeys(STATES, 0), **{state: count for state, count in rows}}

    def list(
        self,
        *,
        owner: str | None = None,
        states: Iterable[str] = (),
        kinds: Iterable[str] = (),
        limit: int = 50,
        visible: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; ``owner`` None lists everyone's; ``visible`` keeps only the jobs it
        accepts (the rows are read one by one until ``limit`` are kept)."""
        where, params = [], []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        for column, values in (("state", list(states)), ("kind", list(kinds))):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        sql = f"SELECT {_COLUMNS} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, id"
        if visible is None:
            sql += " LIMIT ?"
            params.append(limit)
            return [_row(r) for r in self._db().execute(sql, params).fetchall()]  # type: ignore[misc]
        kept: list[dict[str, Any]] = []
        rows = self._db().execute(sql, params)
        try:
            for row in rows:
                job = _row(row)
                if job is not None and visible(job):
                    kept.append(job)
                    if len(kept) >= limit:
                        break
        finally:
            rows.close()
        return kept

    # -- transitions (each one conditional, so it happens at most once)

    def start(self, job_id: str, now: float | None = None) -> bool:
        """queued → running; False if the job is no longer queued (cancelled meanwhile)."""
        now = time.time() if now is None else now
        cur = self._db().execute(
            "UPDATE jobs SET state = 'running', started = ?, heartbeat = ? "
            "WHERE id = ? AND state = 'queued'",
            (now, now, job_id),
        )
        return cur.rowcount == 1

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        now: float | None = None,
        unless_cancel_requested: bool = False,
    ) -> bool:
        """An active job → ``state`` (a terminal one) with its result or problem document.

        With ``unless_cancel_requested``, nothing changes (False) once a cancel was asked for.
        """
        assert state in TERMINAL
        now = time.time() if now is None else now
        unless = " AND cancel_requested = 0" if unless_cancel_requested else ""
        cur = self._db().execute(
            "UPDATE jobs SET state = ?, finished = ?, result = ?, error = ? "
            "WHERE id = ? AND state IN ('queued', 'running')" + unless,
            (
                state,
                now,
                json.dumps(result) if result is not None else None,
                json.dumps(error) if error is not None else None,
                job_id,
            ),
        )
        return cur.rowcount == 1

    def set_progress(self, job_id: str, current: int, total: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._db().execute(
            "UPDATE jobs SET current = ?, total = ?, heartbeat = ? "
            "WHERE id = ? AND state = 'running'",
            (current, total, now, job_id),
        )

    def heartbeat(self, job_ids: Iterable[str], now: float | None = None) -> None:
        ids = list(job_ids)
        if not ids:
            return
        now = time.time() if now is None else now
        self._db().execute(
            f"UPDATE jobs SET heartbeat = ? WHERE id IN ({', '.join('?' * len(ids))}) "
            "AND state IN ('queued', 'running')",
            (now, *ids),
        )

    def request_cancel(
        self, job_id: str, error: dict[str, Any], now: float | None = None
    ) -> dict[str, Any] | None:
        """Cancel a queued job at once; flag a running one for its worker to stop."""
        now = time.time() if now is None else now
        db = self._db()
        db.execute(
            "UPDATE jobs SET state = 'cancelled', finished = ?, error = ? "
            "WHERE id = ? AND state = 'queued'",
            (now, json.dumps(error), job_id),
        )
        db.execute(
            "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", (job_id,)
        )
        return self.get(job_id)

    def cancel_requests(self, job_ids: Iterable[str]) -> list[str]:
        """Which of ``job_ids`` some process asked to cancel."""
        ids = list(job_ids)
        if not ids:
            return []
        rows = self._db().execute(
            f"SELECT id FROM jobs WHERE id IN ({', '.join('?' * len(ids))}) "
            "AND cancel_requested = 1 AND state = 'running'",
            ids,
        )
        return [r["id"] for r in rows]

    def not_queued(self, job_ids: Iterable[str]) -> list[str]:
        """Which of ``job_ids`` left the ``queued`` state (cancelled, reaped) or are gone."""
        ids = list(job_ids)
        if not ids:
            return []
        rows = self._db().execute(
            f"SELECT id FROM jobs WHERE id IN ({', '.join('?' * len(ids))}) AND state = 'queued'",
            ids,
        )
        queued = {r["id"] for r in rows}
        return [i for i in ids if i not in queued]

    def reap(
        self,
        host: str,
        alive: Callable[[int, str | None], bool],
        error: Callable[[dict[str, Any], str], dict[str, Any]],
        stale_after: float,
        now: float | None = None,
    ) -> list[str]:
        """Fail active jobs whose worker is gone: a dead pid on this host, or no heartbeat.

        ``error(job, reason)`` builds the problem document. Returns the ids it failed.
        """
        now = time.time() if now is None else now
        db = self._db()
        rows = db.execute(
            "SELECT id, state, worker_host, worker_pid, worker_started, heartbeat FROM jobs "
            "WHERE state IN ('queued', 'running')"
        ).fetchall()
        reaped = []
        for row in rows:
            job = dict(row)
            if job["worker_host"] == host and not alive(job["worker_pid"], job["worker_started"]):
                reason = (
                    f"The worker process (pid {job['worker_pid']}) running this job died; "
                    "the operation's outcome is unknown."
                )
            elif job["heartbeat"] < now - stale_after:
                reason = (
                    f"The worker process (pid {job['worker_pid']} on another host or boot) "
                    f"running this job has not reported for {int(now - job['heartbeat'])} s; "
                    "the operation's outcome is unknown."
                )
            else:
                continue
            cur = db.execute(
                "UPDATE jobs SET state = 'failed', finished = ?, error = ? "
                "WHERE id = ? AND state = ? AND heartbeat = ?",
                (now, json.dumps(error(job, reason)), job["id"], job["state"], job["heartbeat"]),
            )
            if cur.rowcount == 1:
                reaped.append(job["id"])
        return reaped

    def purge(self, older_than: float) -> int:
        """Delete finished jobs (and their events) that finished before ``older_than``."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "DELETE FROM job_events WHERE job_id IN "
                "(SELECT id FROM jobs WHERE finished IS NOT NULL AND finished < ?)",
                (older_than,),
            )
            cur = db.execute(
                "DELETE FROM jobs WHERE finished IS NOT NULL AND finished < ?", (older_than,)
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return cur.rowcount

    # -- events

    def add_events(self, job_id: str, first_seq: int, lines: list[dict[str, Any]]) -> None:
        if not lines:
            return
        self._db().executemany(
            "INSERT OR IGNORE INTO job_events (job_id, seq, line) VALUES (?, ?, ?)",
            [
                (job_id, first_seq + i, json.dumps(line, separators=(",", ":")))
                for i, line in enumerate(lines)
            ],
        )

    def events(self, job_id: str, after: int = 0, limit: int = 500) -> list[tuple[int, dict]]:
        sql = "SELECT seq, line FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        rows = self._db().execute(sql, (job_id, after, limit)).fetchall()
        return [(r["seq"], json.loads(r["line"])) for r in rows]
