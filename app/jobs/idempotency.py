"""``Idempotency-Key`` records, kept in the job store's database beside the jobs they name.

A key belongs to one token (its name) and to one request: the fingerprint of what was asked.
The first request with a key reserves it (a row without a job), starts its job and records the
job's id; a retry with the same key and fingerprint gets that job back, one with another
fingerprint is refused. A key lives as long as its job: once retention deleted the job, the key
is free again. Reservation is one SQLite transaction, so two processes never both start a job
for the same key.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from app.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from app.jobs.store import JobStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (owner, key)
);
"""
# A reservation whose job never got recorded (its process died while starting it) is freed.
ABANDONED_SECONDS = 60.0
# How long a retry waits for a first request, still starting its job, to record it.
IN_FLIGHT_WAIT_SECONDS = 5.0
_POLL_SECONDS = 0.05


class IdempotencyKeys:
    """The keys of one job store (thread-safe, like the store)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._ready = False

    def _db(self) -> sqlite3.Connection:
        db = self.store._db()  # the store's per-thread connection: one database, one file
        if not self._ready:
            db.executescript(_SCHEMA)
            self._ready = True
        return db

    def submit_once(
        self,
        owner: str,
        key: str,
        fingerprint: str,
        submit: Callable[[], dict[str, Any]],
    ) -> tuple[dict[str, Any], bool]:
        """The job this key names (False), or the one ``submit()`` starts for it (True).

        422 IDEMPOTENCY_KEY_REUSED when the key was used for another request; 409
        IDEMPOTENCY_KEY_IN_FLIGHT when its first request is still starting the job.
        """
        deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
        while True:
            found = self._reserve(owner, key, fingerprint)
            if found is None:
                break
            if found["fingerprint"] != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used for another request (another operation, "
                    "query or body); use a new key for a new request."
                )
            job = self.store.get(found["job_id"]) if found["job_id"] else None
            if job is not None:
                return job, False
            if time.monotonic() >= deadline:
                raise IdempotencyKeyInFlight(
                    "A request with this Idempotency-Key is still starting its job; retry."
                )
            time.sleep(_POLL_SECONDS)
        try:
            job = submit()
        except BaseException:
            self._db().execute(
                "DELETE FROM idempotency_keys WHERE owner = ? AND key = ?", (owner, key)
            )
            raise
        self._db().execute(
            "UPDATE idempotency_keys SET job_id = ? WHERE owner = ? AND key = ?",
            (job["id"], owner, key),
        )
        return job, True

    def _reserve(self, owner: str, key: str, fingerprint: str) -> dict[str, Any] | None:
        """None when the key is now reserved for this request; else the row that holds it."""
        db = self._db()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            # Keys live as long as their jobs (retention deletes jobs) or their reservation.
            db.execute(
                "DELETE FROM idempotency_keys WHERE (job_id IS NOT NULL AND job_id NOT IN "
                "(SELECT id FROM jobs)) OR (job_id IS NULL AND created < ?)",
                (now - ABANDONED_SECONDS,),
            )
            row = db.execute(
                "SELECT fingerprint, job_id FROM idempotency_keys WHERE owner = ? AND key = ?",
                (owner, key),
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO idempotency_keys (owner, key, fingerprint, job_id, created) "
                    "VALUES (?, ?, ?, NULL, ?)",
                    (owner, key, fingerprint, now),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return None if row is None else dict(row)
