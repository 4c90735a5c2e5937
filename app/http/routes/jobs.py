"""Jobs: long operations run in the background (``Prefer: respond-async``), ``/v1/jobs``.

Pull, push and load answer ``202 Accepted`` with ``Location: /v1/jobs/{id}`` when the request
says ``Prefer: respond-async``. Any worker process answers for any job (records live in
SQLite). A job is visible to the token that started it and to ``admin`` tokens, and only when
the token may use every engine the job touches; to others it does not exist (404).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from app.errors import Conflict, NotFound
from app.http.auditing import note_audit_engines
from app.http.auth import Principal
from app.http.operation import operation, render
from app.http.schemas import jobs as schemas
from app.http.streaming import NDJSON_MIME
from app.jobs import TERMINAL, JobContext, JobRunner, get_runner
from app.jobs.runner import cancelled_problem
from app.jobs.spool import Spool

bp = Blueprint("jobs", __name__)

CANCEL_WAIT_SECONDS = 10.0
EVENT_POLL_SECONDS = 0.25
JOB_ID = {"id": "The job's id (from the `Location` of the 202 answer)."}

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
EVENTS_DOC = {
    "schema": {
        "type": "string",
        "description": "One JSON object per line: the job's progress lines so far and as they "
        'come (`{"status", "layer", "current", "total"}`, byte-count updates thinned to about '
        'two a second per layer), then exactly one final line, `{"result": {...}}` when the job '
        'succeeded or `{"error": {problem}}` when it failed or was cancelled.',
    }
}


# --------------------------------------------------------------------------- for other views


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
    job = get_runner().submit(
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
    get_runner().pool.check()  # 429 before the body is received when no place is left
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


def _time(value: float | None) -> str | None:
    if value is None:
        return None
    stamp = datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def job_document(job: dict[str, Any]) -> dict[str, Any]:
    """A job record as the API shows it."""
    return {
        "id": job["id"],
        "kind": job["kind"],
        "state": job["state"],
        "target": job["target"],
        "engine": job["engine"],
        "owner": job["owner"],
        "created": _time(job["created"]),
        "started": _time(job["started"]),
        "finished": _time(job["finished"]),
        "progress": {"current": job["current"], "total": job["total"]},
        "result": job["result"],
        "error": job["error"],
    }


# --------------------------------------------------------------------------- views


def visible_job(runner: JobRunner, job_id: str) -> dict[str, Any]:
    runner.maintain()
    job = runner.store.get(job_id) if len(job_id) <= 64 else None
    principal = g.get("principal")
    if job is None or principal is None or not may_see(principal, job):
        raise NotFound(f"No job '{job_id[:64]}' (or it is not yours).", code="JOB_NOT_FOUND")
    return job


def may_see(principal: Principal, job: dict[str, Any]) -> bool:
    """The job's owner or an admin, whose engine globs cover every engine the job touches."""
    mine = principal.is_admin or job["owner"] == principal.name
    return mine and principal.allows_engines(job["engines"])


@bp.get("/jobs")
@operation(
    tags=["jobs"],
    query=schemas.job_list_query,
    response=schemas.job_list,
    engine=False,
)
def list_jobs(query):
    """List recent jobs, newest first: the caller's own, or everyone's for `admin`.

    The jobs endpoints take any valid token (scope `token`): each token sees its own jobs, and
    only those on engines its `engines` globs allow (a distribution: its source and every
    target); to others a job does not exist (404 JOB_NOT_FOUND).
    """
    runner = get_runner()
    runner.maintain()
    principal = g.principal
    jobs = runner.store.list(
        owner=None if principal.is_admin else principal.name,
        states=query.get("state") or (),
        kinds=query.get("kind") or (),
        limit=query["limit"],
        visible=lambda job: principal.allows_engines(job["engines"]),
    )
    return {"jobs": [job_document(j) for j in jobs]}


@bp.get("/jobs/<id>")
@operation(
    tags=["jobs"],
    response=schemas.job,
    errors=(404,),
    engine=False,
    path_params=JOB_ID,
)
def get_job(id):
    """A job's state, progress and outcome.

    Jobs whose worker process died are reported `failed` (code JOB_WORKER_LOST) with the reason.
    """
    return job_document(visible_job(get_runner(), id))


@bp.get("/jobs/<id>/events")
@operation(
    tags=["jobs"],
    errors=(404,),
    engine=False,
    path_params=JOB_ID,
    response_content={NDJSON_MIME: EVENTS_DOC},
)
def job_events(id):
    """Follow a job's progress as NDJSON, from its start until it ends."""
    runner = get_runner()
    visible_job(runner, id)
    response = Response(_follow(runner, id), mimetype=NDJSON_MIME)
    response.headers["X-Accel-Buffering"] = "no"
    response.headers["Cache-Control"] = "no-store"
    return response


def _follow(runner: JobRunner, job_id: str) -> Iterator[bytes]:
    seq = 0
    while True:
        batch = runner.store.events(job_id, after=seq)
        for number, line in batch:
            seq = number
            yield _line(line)
        if batch:
            continue
        runner.maintain()
        job = runner.store.get(job_id)
        if job is None:  # deleted (retention) while followed
            gone = NotFound(f"Job '{job_id}' no longer exists.", code="JOB_NOT_FOUND")
            yield _line({"error": gone.to_problem()})
            return
        if job["state"] in TERMINAL:
            for _, line in runner.store.events(job_id, after=seq, limit=1_000_000):
                yield _line(line)
            if job["state"] == "succeeded":
                yield _line({"result": job["result"]})
            else:
                yield _line({"error": job["error"] or cancelled_problem()})
            return
        time.sleep(EVENT_POLL_SECONDS)


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


@bp.delete("/jobs/<id>")
@operation(
    tags=["jobs"],
    response=schemas.job,
    errors=(404, 409),
    engine=False,
    path_params=JOB_ID,
    extra_responses={
        202: {
            "description": "Cancellation requested; the job has not stopped yet, and will end "
            "`cancelled` (poll it).",
            "content": {"application/json": {"schema": schemas.job}},
        }
    },
)
def cancel_job(id):
    """Cancel a queued or running job; 200 once it stopped (`cancelled`).

    The engine operation is stopped in any phase, also while the engine has not answered yet
    (its connection is closed, as a CLI user pressing Ctrl-C does); layers already sent stay
    where they are. Once asked, the job ends `cancelled` (a 202 means it has not yet). A job
    that already ended is a 409 JOB_FINISHED.
    """
    runner = get_runner()
    job = visible_job(runner, id)
    note_audit_engines(job["engines"])
    if job["state"] in TERMINAL:
        raise Conflict(f"The job already ended ({job['state']}).", code="JOB_FINISHED")
    job_id = job["id"]
    job = runner.cancel(job_id) or job
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while job["state"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.1)
        runner.maintain()
        job = runner.store.get(job_id) or job
    return job_document(job), (200 if job["state"] in TERMINAL else 202)
