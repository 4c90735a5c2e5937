"""Push an image to a registry: ``POST /v1/images/{ref}/push``.

A push answers 200 only when the registry accepted the manifest; every failure is a real status
(403 REGISTRY_AUTH_FAILED, 404, 502 REGISTRY_UNREACHABLE / REGISTRY_ERROR), also at the end of
an NDJSON progress stream, and also in a job's record with ``Prefer: respond-async``.
"""

from __future__ import annotations

from flask import Blueprint, request

from app.domain.progress import Progress
from app.domain.references import validate_image_ref
from app.domain.registry_auth import HEADER as AUTH_HEADER
from app.errors import BerthError
from app.http.accessors import get_engine, outbound_policy
from app.http.operation import operation
from app.http.routes.images import REF
from app.http.routes.jobs import ACCEPTED_RESPONSE, PREFER_HEADER, start_job, wants_async
from app.http.routes.registries import REGISTRY_AUTH_HEADER, REGISTRY_RESPONSES, registry_client
from app.http.schemas import push as schemas
from app.http.streaming import NDJSON_DOC, run_progress
from app.jobs import JobContext
from app.registry.credentials import resolve_auth
from app.services import push as service

bp = Blueprint("push", __name__)

VERIFY_TIMEOUT = 10.0


@bp.post("/images/<path:ref>/push")
@operation(
    tags=["images"],
    body=schemas.push_request,
    response=schemas.push_result,
    errors=(400, 403, 404, 502),
    path_params=REF,
    headers={**REGISTRY_AUTH_HEADER, **PREFER_HEADER},
    response_content={
        "application/json": {"schema": schemas.push_result},
        "application/x-ndjson": NDJSON_DOC,
    },
    extra_responses={**ACCEPTED_RESPONSE, **REGISTRY_RESPONSES},
)
def push_image(ref, body):
    """Push an image to a registry (`docker push`), optionally under the name `target`.

    No local tag is left changed: a `target` naming nothing locally is removed after the push,
    one naming another image names it again (success or failure). 200 only when the registry
    accepted the manifest; `digest` is the one the registry serves for the tag. Credentials:
    `X-Registry-Auth`, else BERTH_REGISTRY_AUTH_FILE. With `Accept: application/x-ndjson`
    progress streams as it happens and the last line is the result or the error; with
    `Prefer: respond-async` the push runs as a job (202).
    """
    plan = service.plan_push(validate_image_ref(ref), body.get("target"))
    auth = resolve_auth(plan.registry, request.headers.get(AUTH_HEADER))
    outbound_policy().check(plan.registry)  # 403 before the engine is asked anything
    try:
        verifier = registry_client(plan.registry, auth, resolve=False, timeout=VERIFY_TIMEOUT)
    except BerthError:
        verifier = None  # a registry name the v2 client cannot address; the engine's word only
    engine = get_engine()
    image_id = service.prepare(engine, plan)

    if wants_async():

        def run(ctx: JobContext) -> dict:
            events = service.TargetPush(engine, plan, image_id, auth)
            progress = ctx.follow(events, Progress())
            return schemas.push_result.dump(service.outcome(plan, image_id, progress, verifier))

        return start_job("push", str(plan.reference), run)

    events = service.TargetPush(engine, plan, image_id, auth)
    return run_progress(
        events,
        lambda progress: service.outcome(plan, image_id, progress, verifier),
        schemas.push_result,
    )
