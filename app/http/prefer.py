"""The ``Prefer`` request header (RFC 7240): ``respond-async`` and ``wait=N``.

``wait=N`` on a job's creation (with ``respond-async``) or on ``GET /v1/jobs/{id}`` holds the
answer until the job ends or N seconds passed, whichever comes first, so a script need not poll.
The wait holds a request thread (one of the long requests', as the route table marks these
routes), so it is bounded twice: at most ``MAX_WAIT_SECONDS``, and at most ``MAX_WAITERS``
requests per worker process wait at a time; past that the answer comes at once, without
``wait`` in ``Preference-Applied``, as RFC 7240 lets a server ignore a preference.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import request

from app.jobs import TERMINAL

MAX_WAIT_SECONDS = 60
MAX_WAITERS = 4
POLL_SECONDS = 0.2
MAINTAIN_SECONDS = 2.0

_waiters = threading.BoundedSemaphore(MAX_WAITERS)

WAIT_DOC = (
    "`wait=N` (seconds, at most 60): answer when the job has ended or after N s, whichever "
    "comes first; the job's `state` tells which. Applied (`Preference-Applied: wait=N`) unless "
    "this worker already holds as many waiting requests as it allows; then the answer comes at "
    "once."
)


def preferences() -> dict[str, str | None]:
    """The request's preferences, lower-cased names to values (None for a bare token)."""
    found: dict[str, str | None] = {}
    for header in request.headers.getlist("Prefer"):
        for preference in header.split(","):
            token = preference.split(";", 1)[0].strip()
            if not token:
                continue
            name, _, value = token.partition("=")
            found.setdefault(name.strip().lower(), value.strip().strip('"') if value else None)
    return found


def wait_seconds() -> int | None:
    """The ``wait=N`` asked for, capped at MAX_WAIT_SECONDS; None when absent or not a number."""
    value = preferences().get("wait")
    if value is None or not value.isdigit():
        return None
    return min(int(value), MAX_WAIT_SECONDS)


def wait_for_job(
    job: dict[str, Any],
    read: Callable[[str], dict[str, Any] | None],
    maintain: Callable[[], None],
    headers: dict[str, str],
) -> dict[str, Any]:
    """The job once it ended or the request's ``wait`` passed (the record given without one).

    ``read(id)`` reads the record again; ``maintain()`` fails jobs whose worker died, so a lost
    job ends the wait too. Adds ``wait=N`` to ``headers['Preference-Applied']`` when applied.
    """
    seconds = wait_seconds()
    if seconds is None or job["state"] in TERMINAL:
        return job
    if not _waiters.acquire(blocking=False):
        return job  # every waiting place of this process is taken: answer at once
    try:
        applied = headers.get("Preference-Applied")
        headers["Preference-Applied"] = (
            f"{applied}, wait={seconds}" if applied else f"wait={seconds}"
        )
        deadline = time.monotonic() + seconds
        maintained = time.monotonic()
        while job["state"] not in TERMINAL and time.monotonic() < deadline:
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            if time.monotonic() - maintained >= MAINTAIN_SECONDS:
                maintain()
                maintained = time.monotonic()
            job = read(job["id"]) or job
        return job
    finally:
        _waiters.release()
