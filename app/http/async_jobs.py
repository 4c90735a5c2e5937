"""Operations run as jobs from a request (``Prefer: respond-async``), and jobs as shown.

A view that can run in the background asks ``wants_async()``; ``answer_operation`` then starts
the operation as a job (202 with ``Location: /v1/jobs/{id}``) or drives it in the request (one
JSON answer or an NDJSON stream). The job runs the same use case as the request would
(``app.services.operations.run_in_job``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from flask import Response, current_app, g
from marshmallow import Schema

from app.domain.times import rfc3339
from app.errors import JobNotFound
from app.http.accessors import services
from app.http.auth import Principal
from app.http.idempotency import IDEMPOTENCY_HEADER, submit_once
from app.http.operation import render
from app.http.prefer import WAIT_DOC, preferences, wait_for_job
from app.http.schemas import jobs as schemas
from app.http.streaming import run_progress
from app.http.transfers import release_transfer_slot
from app.jobs import JobContext, JobRunner
from app.jobs.spool import Spool
from app.services.operations import ProgressOperation, run_in_job

# The request headers of an operation that may run as a job (Idempotency-Key included).
PREFER_HEADER = {
    "Prefer": {
        "schema": {"type": "string", "example": "respond-async, wait=30"},
        "description": "`respond-async`: run as a job and answer 202 with "
        "`Location: /v1/jobs/{id}` (see the jobs endpoints). " + WAIT_DOC,
    },
    **IDEMPOTENCY_HEADER,
}
ACCEPTED_RESPONSE = {
    202: {
        "description": "With `Prefer: respond-async`: the job was created; follow `Location`.",
        "headers": {
            "Location": {"schema": {"type": "string"}, "description": "`/v1/jobs/{id}`"},
            "Preference-Applied": {
                "schema": {"type": "string"},
                "description": "`respond-async`, with `wait=N` when the answer waited",
            },
        },
        "content": {"application/json": {"schema": schemas.job}},
    },
    422: {
        "description": "With `Idempotency-Key`: the key was used for another request "
        "(IDEMPOTENCY_KEY_REUSED); nothing was started.",
        "content": {"application/problem+json": {"schema": "Problem"}},
    },
    429: {
        "description": "With `Prefer: respond-async`: this worker already runs and queues as many "
        "jobs as configured (TOO_MANY_JOBS); nothing was started. Retry after `Retry-After`.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
        "content": {"application/problem+json": {"schema": "Problem"}},
    },
}


def wants_async() -> bool:
    """True when the request says ``Prefer: respond-async`` (RFC 7240)."""
    return "respond-async" in preferences()


def start_job(
    kind: str,
    target: str | None,
    run: Callable[[JobContext], dict[str, Any]],
    body_sha256: str | None = None,
) -> Response:
    """Run ``run`` as a job of ``kind`` for the calling token; the 202 answer to send.

    ``run`` executes in another thread, outside the request: give it everything it needs
    (engine, credentials) in its closure, never through ``flask.g`` or ``request``. A retry
    with the request's ``Idempotency-Key`` answers the job already started
    (``app.http.idempotency``); ``Prefer: wait=N`` holds the answer until the job ends.
    """
    return _start(kind, target, run, body_sha256)[0]


def _start(
    kind: str,
    target: str | None,
    run: Callable[[JobContext], dict[str, Any]],
    body_sha256: str | None,
) -> tuple[Response, bool]:
    """:func:`start_job`'s answer, and whether this request started the job."""
    principal = g.get("principal")
    runner = services().jobs
    job, started = submit_once(
        lambda: runner.submit(
            kind,
            principal.name if principal else "anonymous",
            target,
            run,
            engine=g.get("engine_name"),
        ),
        body_sha256,
    )
    headers = {"Location": f"/v1/jobs/{job['id']}", "Preference-Applied": "respond-async"}
    job = wait_for_job(job, runner.store.get, runner.maintain, headers)
    return render((job_document(job), 202, headers), schemas.job, 202), started


def start_spooled_job(
    kind: str,
    target: str | None,
    body: Iterable[bytes],
    run: Callable[[JobContext, Iterable[bytes]], dict[str, Any]],
) -> Response:
    """Like :func:`start_job` for an operation on the request body (load): the body is
    received whole first (upload errors are still answered as such), kept under
    ``BERTH_DATA_DIR/spool`` and handed to ``run(ctx, chunks)``, then removed."""
    services().jobs.pool.check()  # 429 before the body is received when no place is left
    digest = hashlib.sha256()
    spool = Spool.save(
        _digesting(body, digest), Path(current_app.config["BERTH_DATA_DIR"]) / "spool"
    )
    release_transfer_slot()  # received whole: a `Prefer: wait` holds no transfer slot

    def job(ctx: JobContext) -> dict[str, Any]:
        try:
            return run(ctx, spool.chunks())
        finally:
            spool.remove()

    try:
        answer, started = _start(kind, target, job, digest.hexdigest())
    except BaseException:
        spool.remove()
        raise
    if not started:  # a retry: the job its key names has (or had) its own copy
        spool.remove()
    return answer


def _digesting(chunks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def job_document(job: dict[str, Any]) -> dict[str, Any]:
    """A job record as the API shows it."""
    return {
        "id": job["id"],
        "kind": job["kind"],
        "state": job["state"],
        "target": job["target"],
        "engine": job["engine"],
        "owner": job["owner"],
        "created": rfc3339(job["created"]),
        "started": rfc3339(job["started"]),
        "finished": rfc3339(job["finished"]),
        "progress": {"current": job["current"], "total": job["total"]},
        "result": job["result"],
        "error": job["error"],
    }


def answer_operation(
    operation: ProgressOperation,
    schema: Schema,
    kind: str,
    target: str | None,
    status: int = 200,
) -> Any:
    """Run ``operation`` as a job when the request asks for it, else in the request."""
    if wants_async():
        return start_job(kind, target, lambda ctx: schema.dump(run_in_job(ctx, operation)))
    return run_progress(operation.events(), operation.outcome, schema, operation.progress(), status)


def visible_job(runner: JobRunner, job_id: str) -> dict[str, Any]:
    runner.maintain()
    job = runner.store.get(job_id) if len(job_id) <= 64 else None
    principal = g.get("principal")
    if job is None or principal is None or not may_see(principal, job):
        raise JobNotFound(f"No job '{job_id[:64]}' (or it is not yours).")
    return job


def may_see(principal: Principal, job: dict[str, Any]) -> bool:
    """The job's owner or an admin, whose engine globs cover every engine the job touches."""
    mine = principal.is_admin or job["owner"] == principal.name
    return mine and principal.allows_engines(job["engines"])
