"""The image lifecycle: commit, pull, delete, prune, and what layers really cost.

``docker commit``, ``docker pull``, ``docker rmi``, ``docker image prune`` as honest HTTP
operations: a failure the engine buries in a 200 stream leaves Berth with a real status, deletions
and prunes can be asked what they *would* do, and layers show which images share them.
"""

from __future__ import annotations

import time

from flask import Blueprint

from app.domain.changes import validate_changes
from app.domain.familiar import familiar
from app.domain.prune_filters import parse_until
from app.domain.references import validate_image_ref
from app.domain.registry_auth import HEADER
from app.errors import PROBLEM_MIME, ValidationFailed
from app.http.accessors import get_engine
from app.http.async_jobs import ACCEPTED_RESPONSE, PREFER_HEADER, answer_operation
from app.http.cached_reads import ETAG_DOC, NOT_MODIFIED_DOC, cached
from app.http.operation import operation
from app.http.paths import CONTAINER, REF
from app.http.registry_access import registry_credentials
from app.http.schemas import lifecycle as schemas
from app.http.streaming import NDJSON_DOC, NDJSON_MIME
from app.services import pull

bp = Blueprint("lifecycle", __name__)


REGISTRY_AUTH_DOC = {
    "description": "Registry credentials for this call only, in the engine's format: "
    'base64url of JSON `{"username", "password", "serveraddress"}` (or `identitytoken`). '
    "Passed to the engine, never stored or logged. Without it, the credentials stored for the "
    "registry (BERTH_REGISTRY_AUTH_FILE), if any.",
    "schema": {"type": "string"},
}
PULL_ERRORS = {
    403: {
        "description": "REGISTRY_AUTH_FAILED: the registry wants credentials or refused them; "
        "REGISTRY_NOT_ALLOWED: the outbound policy does not allow the registry (nothing was "
        "sent to it); or FORBIDDEN: the token lacks the `write` scope.",
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    },
    404: {
        "description": "MANIFEST_UNKNOWN: no such repository or tag in the registry; "
        "PLATFORM_NOT_AVAILABLE: the image is not for the platform asked for.",
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    },
    502: {
        "description": "REGISTRY_UNREACHABLE, or REGISTRY_ERROR with the registry's message "
        "in `detail` (including failures the engine reported inside its stream).",
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    },
}
CONFLICT_DOC = {
    "description": "The engine would refuse: IMAGE_IN_USE (with the containers and whether "
    "force would help), IMAGE_HAS_CHILDREN or IMAGE_HAS_REFERENCES.",
    "content": {PROBLEM_MIME: {"schema": schemas.image_conflict}},
}


@bp.post("/containers/<container>/commit")
@operation(
    tags=["lifecycle"],
    body=schemas.commit_request,
    response=schemas.commit_result,
    status=201,
    errors=(404,),
    path_params=CONTAINER,
    response_headers={"Location": {"description": "The new image.", "schema": {"type": "string"}}},
)
def commit_container(container, body):
    """Create an image from a container's changes (`docker commit`).

    `changes` are Dockerfile instructions applied to the new image's config (CMD, ENTRYPOINT,
    ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR); any other line is refused with 400,
    naming it. `author` and `message` show in the image's inspect (`author`, `comment`) and
    `message` in its history. 404 CONTAINER_NOT_FOUND when there is no such container.
    """
    engine = get_engine()
    engine.inspect_container(container)  # a missing container is a 404 before anything else
    if body.get("tag") and not body.get("repository"):
        raise ValidationFailed("A tag needs a repository.", errors={"tag": ["Needs repository."]})
    changes = validate_changes(body["changes"])
    repository = str(body["repository"]) if body.get("repository") else None
    tag = body.get("tag") or "latest"
    image_id = engine.commit_container(
        container,
        repository=repository,
        tag=tag,
        author=body.get("author"),
        message=body.get("message"),
        changes=changes,
        pause=body["pause"],
    )
    reference = familiar(f"{repository}:{tag}") if repository else None
    return {"id": image_id, "reference": reference}, 201, {"Location": f"/v1/images/{image_id}"}


@bp.post("/images/pull")
@operation(
    tags=["lifecycle"],
    body=schemas.pull_request,
    response=schemas.pull_result,
    errors=(403, 404, 502),
    extra_responses={**PULL_ERRORS, **ACCEPTED_RESPONSE},
    headers={HEADER: REGISTRY_AUTH_DOC, **PREFER_HEADER},
    response_content={
        "application/json": {"schema": schemas.pull_result},
        NDJSON_MIME: NDJSON_DOC,
    },
)
def pull_image(body):
    """Pull an image from a registry (`docker pull`); 200 only when the image is really there.

    A name without tag means `:latest` (never all tags). The engine reports most failures inside
    a 200 stream; Berth reads it and answers with a real status: 404 MANIFEST_UNKNOWN, 403
    REGISTRY_AUTH_FAILED (credentials missing or refused), 502 REGISTRY_UNREACHABLE, 502
    REGISTRY_ERROR (the registry's message in `detail`); 404 PLATFORM_NOT_AVAILABLE when the
    image that arrived is not for the `platform` asked for.

    With `Accept: application/x-ndjson` the answer streams progress, one JSON object per line
    (`{"status", "layer", "current", "total"}`), and ends with exactly one line: `{"result":
    {"id", "reference", "digest"}}` or `{"error": {problem}}`. A failure known before the
    stream starts is answered as a plain problem document with its status.

    With `Prefer: respond-async` the pull runs as a job: 202 with `Location: /v1/jobs/{id}`.
    """
    plan = pull.plan_pull(body["reference"], body.get("platform"))
    credentials = registry_credentials(plan.registry)  # 403 before the engine is asked anything
    op = pull.Pull(get_engine(), plan, credentials)
    return answer_operation(op, schemas.pull_result, "pull", plan.local_name)


@bp.delete("/images/<path:ref>")
@operation(
    tags=["lifecycle"],
    query=schemas.delete_query,
    response=schemas.delete_result,
    errors=(404,),
    path_params=REF,
    extra_responses={409: CONFLICT_DOC},
)
def delete_image(ref, query):
    """Delete an image or one of its names (`docker rmi`); `dry_run=true` changes nothing.

    By name, the name is removed, and the image too once it has no name left. By id, the image
    and all its names. Untagged parents go too unless `noprune`. The engine's rule on
    containers: an image a *stopped* container uses is deleted with `force=true` (the container
    keeps its filesystem); an image a *running* container uses is never deleted - `force=true`
    by name only removes the name, by id it is refused. A 409 IMAGE_IN_USE lists the containers
    and says what `force` would do (`force_would_help`, `force_outcome`).
    """
    result = get_engine().delete_image(
        validate_image_ref(ref),
        force=query["force"],
        noprune=query["noprune"],
        dry_run=query["dry_run"],
    )
    return {**result, "dry_run": query["dry_run"]}


@bp.post("/images/prune")
@operation(
    tags=["lifecycle"],
    body=schemas.prune_request,
    response=schemas.prune_result,
)
def prune_images(body):
    """Delete unused images (`docker image prune`); `dry_run` answers what would go.

    By default only dangling images: exactly those `GET /v1/images?dangling=true` lists, minus
    any a container still uses (the engine keeps those; `dry_run` lists them in `skipped`).
    `dangling: false` removes every image no container uses (`docker image prune -a`).
    `space_reclaimed` counts the bytes of the layers removed from disk.
    """
    until_ns = None
    if body.get("until"):
        until_ns = parse_until(body["until"], time.time()) * 1_000_000_000
    result = get_engine().prune_images(
        dangling=body["dangling"],
        until_ns=until_ns,
        labels=body["labels"],
        dry_run=body["dry_run"],
    )
    return {**result, "dry_run": body["dry_run"]}


@bp.get("/images/<path:ref>/layers")
@operation(
    tags=["images"],
    response=schemas.layers,
    errors=(404,),
    path_params=REF,
    response_headers=ETAG_DOC,
    extra_responses=NOT_MODIFIED_DOC,
)
@cached(schemas.layers)
def image_layers(ref):
    """The image's layers, base first: size, the step that made it, the images sharing it.

    Two images share a layer on disk when they hold the same `chain_id` (the same content on the
    same layers below). `unique_size` is what deleting this image alone could free.
    """
    return get_engine().image_layers(validate_image_ref(ref))


@bp.get("/usage")
@operation(
    tags=["images"],
    query=schemas.usage_query,
    response=schemas.usage,
    response_headers=ETAG_DOC,
    extra_responses=NOT_MODIFIED_DOC,
)
@cached(schemas.usage)
def usage(query):
    """What the images really cost on disk: apparent versus actual size.

    `apparent_size` is the sum of image sizes as `docker images` shows them (shared layers
    counted once per image); `actual_size` counts every layer once (the engine's own figure,
    from `/system/df`); `shared_size` is the part held by two or more images. With `reference`
    the same figures for the matching images only, from their layers' sizes.
    """
    return get_engine().usage(query.get("reference"))
