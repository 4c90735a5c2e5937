"""Distributions: one image sent from one engine to many, ``/v1/distributions``.

A distribution is a job (kind ``distribution``): ``POST`` answers 202 at once with its document
and ``Location: /v1/distributions/{id}``; the same id works under ``/v1/jobs`` (events, cancel).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g

from app.errors import DistributionNotFound, NotFound
from app.http.accessors import services
from app.http.async_jobs import ACCEPTED_RESPONSE, job_document, visible_job
from app.http.auditing import note_audit_engines
from app.http.idempotency import IDEMPOTENCY_HEADER, submit_once
from app.http.operation import operation, render
from app.http.prefer import WAIT_DOC, wait_for_job
from app.http.registry_access import REGISTRY_AUTH_HEADER, push_verifier, registry_credentials
from app.http.schemas import distributions as schemas
from app.jobs import JobContext, JobRunner
from app.services import distribution as service

bp = Blueprint("distributions", __name__)

EVENT_PAGE = 500
DISTRIBUTION_ID = {"id": "The distribution's id (its job's id)."}
# What the problem of a failed distribution repeats from the document; not shown twice.
_REPEATED = {"engines", "push", "targets", "partial", "image", "image_id", "source_engine"}
_REPEATED |= {"via", "registry", "succeeded", "failed", "cancelled", "in_progress"}
WAIT_HEADER = {
    "Prefer": {"schema": {"type": "string", "example": "wait=30"}, "description": WAIT_DOC}
}


def _document(
    job: dict[str, Any], events: list[dict[str, Any]], plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The distribution document: the job's identity and times, the rows, its problem."""
    job_doc = job_document(job)
    error = job_doc["error"]
    if isinstance(error, dict):
        error = {key: value for key, value in error.items() if key not in _REPEATED}
    return {
        **{key: job_doc[key] for key in ("id", "state", "owner", "created", "started", "finished")},
        **service.distribution_view(job, events, plan),
        "error": error,
    }


@bp.post("/distributions")
@operation(
    tags=["engines"],
    body=schemas.distribution_request,
    response=schemas.distribution,
    status=202,
    errors=(400, 403, 404, 503),
    engine=False,
    headers={**REGISTRY_AUTH_HEADER, **IDEMPOTENCY_HEADER, **WAIT_HEADER},
    extra_responses={422: ACCEPTED_RESPONSE[422]},
    response_headers={
        "Location": {"schema": {"type": "string"}, "description": "`/v1/distributions/{id}`"}
    },
)
def create_distribution(body):
    """Send an image from one engine to several (`docker push` + `pull`, or `save` | `load`).

    Answers 202 with the distribution (one `pending` row per target) and `Location`; follow it
    with `GET /v1/distributions/{id}`, or `/v1/jobs/{id}/events`, and cancel it with
    `DELETE /v1/jobs/{id}`. Refused before anything starts: an engine not configured (404
    ENGINE_NOT_FOUND), one the token may not use (403 ENGINE_FORBIDDEN, naming it), an image
    not on the source (404 IMAGE_NOT_FOUND), a source that does not answer (503), a `via`
    registry the outbound policy refuses (403 REGISTRY_NOT_ALLOWED).

    `via: {"registry": ref}` pushes once from the source (under `ref`; the source's local tags
    are left as they were), then every target pulls it by the digest the registry confirmed (a
    few targets at a time, BERTH_DISTRIBUTION_PARALLELISM) and is tagged `ref` and with the
    image's name, where it uses neither for another image. Credentials:
    `X-Registry-Auth`, else BERTH_REGISTRY_AUTH_FILE, for the push and the pulls; never stored.
    `via: "stream"` feeds the source's `docker save` into `docker load` on the targets, without
    a file and with bounded memory. It succeeds only when every target reports the source's
    image id; otherwise it fails (DISTRIBUTION_PARTIAL when some targets have the image).
    """
    pool = services().engines
    principal = g.principal
    source, targets = service.resolve_engines(
        pool.names,
        pool.default,
        body.get("source_engine"),
        body["target_engines"],
        principal.allows_engine,
    )
    note_audit_engines([source, *targets])
    via = body["via"]
    details = pool.get(source).inspect_image_raw(body["image"])  # 404 before the job starts
    plan = service.plan_distribution(
        body["image"], details, source, targets, via["kind"], via["registry"]
    )
    auth, verifier = None, None
    if plan.registry is not None:
        auth = registry_credentials(plan.registry.registry)  # 403 before the job starts
        verifier = push_verifier(plan.registry.registry, auth)
    parallelism = current_app.config.get("BERTH_DISTRIBUTION_PARALLELISM", 4)
    outbound = services().outbound

    def run(ctx: JobContext) -> dict[str, Any]:
        return service.run_distribution(
            ctx,
            plan,
            pool,
            auth=auth,
            verifier=verifier,
            parallelism=parallelism,
            outbound=outbound,
        )

    engines = [source, *targets]
    runner = services().jobs
    job, started = submit_once(
        lambda: runner.submit(
            "distribution", principal.name, plan.image, run, engine=source, engines=engines
        )
    )
    headers = {"Location": f"/v1/distributions/{job['id']}"}
    waited = wait_for_job(job, runner.store.get, runner.maintain, headers)
    if started and waited is job:
        document = _document(job, [], plan.document())
    else:  # a retry (Idempotency-Key) or a wait: as it is now, as GET shows it
        document = _current(runner, waited)
    return render((document, 202, headers), schemas.distribution, 202)


@bp.get("/distributions/<id>")
@operation(
    tags=["engines"],
    response=schemas.distribution,
    errors=(404,),
    engine=False,
    path_params=DISTRIBUTION_ID,
)
def get_distribution(id):
    """A distribution: its state and one row per target engine (state, image id, bytes moved,
    duration, error).

    Rows change while it runs. `state` is `succeeded` only when every target reports the
    source's image id; a distribution some targets failed is `failed`, with `partial: true`
    when others have the image, and `summary` lists both. Visible to the token that started
    it and to `admin` tokens (any valid token may ask), and only if the token's `engines` globs
    allow its source and every target (otherwise 404 DISTRIBUTION_NOT_FOUND).
    """
    runner = services().jobs
    try:
        job = visible_job(runner, id)
    except NotFound:
        job = None
    if job is None or job["kind"] != "distribution":
        raise DistributionNotFound(f"No distribution '{id[:64]}' (or it is not yours).")
    return _current(runner, job)


def _current(runner: JobRunner, job: dict[str, Any]) -> dict[str, Any]:
    """The document of a distribution as it is now, from its record and events."""
    events: list[dict[str, Any]] = []
    seq = 0
    while batch := runner.store.events(job["id"], after=seq, limit=EVENT_PAGE):
        seq = batch[-1][0]
        events.extend(line for _, line in batch)
    # The record may have ended after its events were read: read it again.
    job = runner.store.get(job["id"]) or job
    return _document(job, events)
