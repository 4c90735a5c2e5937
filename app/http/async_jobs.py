"""Operations run as jobs from a request (``Prefer: respond-async``), and jobs as shown.

A view that can run in the background asks ``wants_async()``; ``answer_operation`` then starts
the operation as a job (202 with ``Location: /v1/jobs/{id}``) or drives it in the request (one
JSON answer or an NDJSON stream). The job runs the same use case as the request would
(``app.services.operations.run_in_job``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Response, current_app, g, request
from marshmallow import Schema

from app.domain.times import rfc3339
from app.errors import JobNotFound
from app.http.accessors import services
from app.http.auth import Principal
from app.http.operation import render
from app.http.schemas import jobs as schemas
from app.http.streaming import run_progress
from app.jobs import JobContext, JobRunner
from app.jobs.spool import Spool
from app.services.operations import ProgressOperation, run_in_job

PREFER_HEADER = {
    "Prefer": {
        "schema": {"type": "string", "example": "respond-async"},
        "description": "`respond-async`: run as a job and answer 202 at once, with "
        "`Location: /v1/jobs/{id}` (see the jobs endpoints).",
    }
}
ACCEPTED_RESPONSE = {
    202: {
        "description": "With `Prefer: respond-async`: the job was created; follow `Location`.",
        "headers": {
            "Location": {"schema": {"type": "string"}, "description": "`/v1/jobs/{id}`"},
            "Preference-Applied": {
                "schema": {"type": "string"},
                "description": "`respond-async`",
            },
        },
        "content": {"application/json": {"schema": schemas.job}},
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
    for header in request.headers.getlist("Prefer"):
        for preference in header.split(","):
            token = preference.split(";", 1)[0].strip().lower()
            if token == "respond-async":
                return True
    return False


def start_job(
    kind: str, target: str | None, run: Callable[[JobContext], dict[str, Any]]
) -> Response:
    """Run ``run`` as a job of ``kind`` for the calling token; the 202 answer to send.

    ``run`` executes in another thread, outside the request: give it everything it needs
    (engine, credentials) in its closure, never through ``flask.g`` or ``request``.
    """
    principal = g.get("principal")
    job = services().jobs.submit(
        kind,
        principal.name if principal else "anonymous",
        target,
        run,
        engine=g.get("engine_name"),
    )
    headers = {"Location": f"/v1/jobs/{job['id']}", "Preference-Applied": "respond-async"}
    return render((job_document(job), 202, headers), schemas.job, 202)


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
    spool = Spool.save(body, Path(current_app.config["BERTH_DATA_DIR"]) / "spool")

    def job(ctx: JobContext) -> dict[str, Any]:
        try:
            return run(ctx, spool.chunks())
        finally:
            spool.remove()

    try:
        return start_job(kind, target, job)
    except BaseException:
        spool.remove()
        raise


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
