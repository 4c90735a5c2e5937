"""Jobs: long operations run in the background (``Prefer: respond-async``), ``/v1/jobs``.

Pull, push and load answer ``202 Accepted`` with ``Location: /v1/jobs/{id}`` when the request
says ``Prefer: respond-async``. Any worker process answers for any job (records live in
SQLite). A job is visible to the token that started it and to ``admin`` tokens, and only when
the token may use every engine the job touches; to others it does not exist (404).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Blueprint, Response, g

from app.domain.ndjson import json_line
from app.errors import JobFinished, JobNotFound
from app.http.accessors import services
from app.http.async_jobs import job_document, visible_job
from app.http.auditing import note_audit_engines
from app.http.operation import operation
from app.http.prefer import WAIT_DOC, wait_for_job
from app.http.schemas import jobs as schemas
from app.http.streaming import NDJSON_MIME
from app.jobs import TERMINAL, JobRunner
from app.jobs.runner import cancelled_problem

bp = Blueprint("jobs", __name__)

CANCEL_WAIT_SECONDS = 10.0
EVENT_POLL_SECONDS = 0.25
JOB_ID = {"id": "The job's id (from the `Location` of the 202 answer)."}

EVENTS_DOC = {
    "schema": {
        "type": "string",
        "description": "One JSON object per line: the job's progress lines so far and as they "
        'come (`{"status", "layer", "current", "total"}`, byte-count updates thinned to about '
        'two a second per layer), then exactly one final line, `{"result": {...}}` when the job '
        'succeeded or `{"error": {problem}}` when it failed or was cancelled.',
    }
}


# --------------------------------------------------------------------------- views


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
    runner = services().jobs
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
    headers={
        "Prefer": {"schema": {"type": "string", "example": "wait=30"}, "description": WAIT_DOC}
    },
)
def get_job(id):
    """A job's state, progress and outcome.

    Jobs whose worker process died are reported `failed` (code JOB_WORKER_LOST) with the reason.
    With `Prefer: wait=N` the answer comes when the job has ended or after N seconds.
    """
    runner = services().jobs
    headers: dict[str, str] = {}
    job = wait_for_job(visible_job(runner, id), runner.store.get, runner.maintain, headers)
    return job_document(job), 200, headers


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
    runner = services().jobs
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
            yield json_line(line)
        if batch:
            continue
        runner.maintain()
        job = runner.store.get(job_id)
        if job is None:  # deleted (retention) while followed
            gone = JobNotFound(f"Job '{job_id}' no longer exists.")
            yield json_line({"error": gone.to_problem()})
            return
        if job["state"] in TERMINAL:
            for _, line in runner.store.events(job_id, after=seq, limit=1_000_000):
                yield json_line(line)
            if job["state"] == "succeeded":
                yield json_line({"result": job["result"]})
            else:
                yield json_line({"error": job["error"] or cancelled_problem()})
            return
        time.sleep(EVENT_POLL_SECONDS)


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
    runner = services().jobs
    job = visible_job(runner, id)
    note_audit_engines(job["engines"])
    if job["state"] in TERMINAL:
        raise JobFinished(f"The job already ended ({job['state']}).")
    job_id = job["id"]
    job = runner.cancel(job_id) or job
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while job["state"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.1)
        runner.maintain()
        job = runner.store.get(job_id) or job
    return job_document(job), (200 if job["state"] in TERMINAL else 202)
