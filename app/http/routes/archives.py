"""Images and containers as files: save, load, export, import, streamed both ways.

Downloads stream the engine's tar as it is produced and uploads reach the engine as they arrive:
Berth holds a few chunks at a time, whatever the archive's size. Every check that can fail (the
reference, the image or container, the content type, the size limit, an empty body) happens
before the first byte, so failures are problem+json with a real status; an engine failure after
the first byte cuts the download, which then cannot be mistaken for a complete archive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from flask import Blueprint, request

from app.domain.tar_framing import (
    TAR_MIME,
    container_archive_name,
    image_archive_name,
    images_archive_name,
)
from app.engine.read_ahead import ReadAhead
from app.http.accessors import get_engine
from app.http.archive_io import download, receive_archive
from app.http.async_jobs import ACCEPTED_RESPONSE, PREFER_HEADER, start_spooled_job, wants_async
from app.http.operation import operation
from app.http.paths import CONTAINER, REF
from app.http.schemas import archives as schemas
from app.http.streaming import NDJSON_DOC, run_progress, wants_ndjson
from app.http.uploads import complete_tar
from app.jobs import JobContext
from app.services import image_import, save
from app.services.load import Load
from app.services.operations import run_in_job

bp = Blueprint("archives", __name__)

_BINARY = {"schema": {"type": "string", "format": "binary"}}
TAR_CONTENT = {TAR_MIME: _BINARY}
# Declared as application/octet-stream, the type every client generator can send;
# application/x-tar and application/gzip (what `curl -T` users write) are accepted alike.
UPLOAD_BODY = {
    "required": True,
    "description": "The archive, streamed (chunked transfer encoding is fine). Plain tar or "
    "gzip-compressed; at most BERTH_MAX_UPLOAD_BYTES (413 past it). Content-Type "
    "application/octet-stream, application/x-tar or application/gzip.",
    "content": {"application/octet-stream": _BINARY},
}
DISPOSITION = {
    "Content-Disposition": {
        "description": "`attachment; filename=<name>.tar` (for `curl -OJ`).",
        "schema": {"type": "string"},
    }
}


@bp.get("/images/<path:ref>/archive")
@operation(
    tags=["archives"],
    errors=(404,),
    path_params=REF,
    response_content=TAR_CONTENT,
    response_headers=DISPOSITION,
)
def save_image(ref):
    """Download an image as a tar archive (`docker save`).

    The archive holds the image with the tag named (a bare name means `name:latest`; an id saves
    the image without tags), and loads back with `POST /v1/archives` or `docker load`.
    The file name follows the reference: `ubuntu:14.04` → `ubuntu_14.04.tar`.
    """
    engine = get_engine()
    name = save.saved_name(engine, ref)
    return download(lambda: engine.save_images([name]), image_archive_name(name))


@bp.get("/archives")
@operation(
    tags=["archives"],
    query=schemas.save_query,
    errors=(404,),
    response_content=TAR_CONTENT,
    response_headers=DISPOSITION,
)
def save_images(query):
    """Download several images as one tar archive (`docker save a b ...`).

    Each `reference` is saved as `docker save` does: `name:tag` or an id that image, a bare
    `name` every tagged image of the repository. 404 names the first that does not exist.
    """
    engine = get_engine()
    names = save.saved_names(engine, query["reference"])
    return download(lambda: engine.save_images(names), images_archive_name(names))


@bp.post("/archives")
@operation(
    operation_id="load_archive",
    tags=["archives"],
    response=schemas.load_result,
    status=201,
    errors=(400, 413, 415),
    request_body=UPLOAD_BODY,
    response_content={
        "application/json": {"schema": schemas.load_result},
        "application/x-ndjson": NDJSON_DOC,
    },
    headers=PREFER_HEADER,
    extra_responses=ACCEPTED_RESPONSE,
)
def load_images():
    """Load images from a tar archive (`docker load`).

    The body is what `docker save` or `GET /v1/archives` produce, plain or gzip-compressed,
    streamed to the engine as it arrives. 201 lists the references and ids loaded. A body that is
    not an image archive, is truncated or empty is 400 INVALID_ARCHIVE with the engine's reason,
    and loads nothing. With `Accept: application/x-ndjson` the engine's progress streams (after
    the upload) and the last line is the result or the error (the status is then 200).
    Upload with `curl -T image.tar -X POST` (`--data-binary @file` reads the file into memory).
    With `Prefer: respond-async` the upload is received whole (kept under BERTH_DATA_DIR until
    loaded), then the load runs as a job: 202 with `Location: /v1/jobs/{id}`.
    """
    upload = receive_archive()
    engine = get_engine()
    if wants_async():

        def run(ctx: JobContext, body: Iterable[bytes]) -> dict[str, Any]:
            return schemas.load_result.dump(run_in_job(ctx, Load(engine, body, quiet=False)))

        return start_spooled_job("load", None, complete_tar(upload), run)
    ndjson = wants_ndjson()
    with ReadAhead(upload, name="upload") as body:  # the client's next chunks arrive meanwhile
        load = Load(engine, complete_tar(body), length=request.content_length, quiet=not ndjson)
        events = load.events()
    status = 200 if ndjson else 201
    return run_progress(events, load.outcome, schemas.load_result, load.progress(), status)


@bp.get("/containers/<container>/export")
@operation(
    tags=["archives"],
    errors=(404,),
    path_params=CONTAINER,
    response_content=TAR_CONTENT,
    response_headers=DISPOSITION,
)
def export_container(container):
    """Download a container's filesystem as a tar archive (`docker export`).

    The files only: no image history, config or volumes. `POST /v1/images/import` turns it back
    into a one-layer image. The file is named after the container (`web-1.tar`).
    """
    engine = get_engine()
    details = engine.inspect_container(container)  # 404 CONTAINER_NOT_FOUND before any byte
    return download(
        lambda: engine.export_container(details["Id"]),
        container_archive_name(details.get("Name") or container),
    )


@bp.post("/images/import")
@operation(
    tags=["archives"],
    query=schemas.import_query,
    response=schemas.import_result,
    status=201,
    errors=(400, 413, 415),
    request_body=UPLOAD_BODY,
    response_headers={"Location": {"description": "The new image.", "schema": {"type": "string"}}},
)
def import_image(query):
    """Create an image from a root filesystem tar (`docker import`).

    The body (plain or gzip-compressed tar, e.g. from `GET /v1/containers/{container}/export`)
    becomes the image's only layer. `change` applies Dockerfile instructions to its config
    (checked like commit's changes); `message` is recorded in its history. An empty body, one
    the engine cannot read, or a plain tar that stops short of its end is 400 INVALID_ARCHIVE
    and creates nothing.
    """
    plan = image_import.plan_import(query.get("reference"), query["change"], query.get("message"))
    with ReadAhead(receive_archive(), name="upload") as body:
        result = image_import.import_archive(
            get_engine(), plan, complete_tar(body), request.content_length
        )
    reference = result["reference"]
    location = "/v1/images/" + (quote(reference, safe="/:@") if reference else result["id"])
    return result, 201, {"Location": location}
