"""Push an image to a registry: ``POST /v1/images/{ref}/push``.

A push answers 200 only when the registry accepted the manifest; every failure is a real status
(403 REGISTRY_AUTH_FAILED, 404, 502 REGISTRY_UNREACHABLE / REGISTRY_ERROR), also at the end of
an NDJSON progress stream, and also in a job's record with ``Prefer: respond-async``.
"""

from __future__ import annotations

from flask import Blueprint

from app.domain.references import validate_image_ref
from app.http.accessors import get_engine
from app.http.async_jobs import ACCEPTED_RESPONSE, PREFER_HEADER, answer_operation
from app.http.operation import operation
from app.http.paths import REF
from app.http.registry_access import (
    REGISTRY_AUTH_HEADER,
    REGISTRY_RESPONSES,
    push_verifier,
    registry_credentials,
)
from app.http.schemas import push as schemas
from app.http.streaming import NDJSON_DOC
from app.services import push

bp = Blueprint("push", __name__)


@bp.post("/images/<path:ref>/push")
@operation(
    tags=["lifecycle"],
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
    plan = push.plan_push(validate_image_ref(ref), body.get("target"))
    auth = registry_credentials(plan.registry)  # 403 before the engine is asked anything
    op = push.Push(get_engine(), plan, auth, push_verifier(plan.registry, auth))
    return answer_operation(op, schemas.push_result, "push", str(plan.reference))
