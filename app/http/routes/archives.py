"""Images and containers as files: save, load, export, import, streamed both ways.

Downloads stream the engine's tar as it is produced and uploads reach the engine as they arrive:
Berth holds a few chunks at a time, whatever the archive's size. Every check that can fail (the
reference, the image or container, the content type, the size limit, an empty body) happens
before the first byte, so failures are problem+json with a real status; an engine failure after
the first byte cuts the download, which then cannot be mistaken for a complete archive.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from app.domain.changes import validate_changes
from app.domain.progress import Progress
from app.domain.references import is_image_id, parse_reference, validate_image_ref
from app.domain.tar_framing import (
    TAR_MIME,
    classify_archive_error,
    container_archive_name,
    image_archive_name,
    images_archive_name,
    parse_load_messages,
    unique_in_order,
)
from app.engine.read_ahead import ReadAhead
from app.errors import ImageNotFound, InvalidArchive
from app.http.accessors import get_engine
from app.http.operation import operation
from app.http.routes.images import REF
from app.http.routes.jobs import ACCEPTED_RESPONSE, PREFER_HEADER, start_spooled_job, wants_async
from app.http.schemas import archives as schemas
from app.http.streaming import NDJSON_DOC, run_progress, wants_ndjson
from app.http.transfers import take_transfer_slot
from app.http.uploads import UploadStream, check_archive_mimetype, complete_tar
from app.observability.metrics import observe_stream_out

if TYPE_CHECKING:
    from app.engine import Engine
    from app.engine.archives import EngineByteStream

bp = Blueprint("archives", __name__)

_BINARY = {"schema": {"type": "string", "format": "binary"}}
TAR_CONTENT = {TAR_MIME: _BINARY}
UPLOAD_BODY = {
    "required": True,
    "description": "The archive, streamed (chunked transfer encoding is fine). Plain tar or "
    "gzip-compressed; at most BERTH_MAX_UPLOAD_BYTES (413 past it).",
    "content": {TAR_MIME: _BINARY, "application/gzip": _BINARY},
}
DISPOSITION = {
    "Content-Disposition": {
        "description": "`attachment; filename=<name>.tar` (for `curl -OJ`).",
        "schema": {"type": "string"},
    }
}
CONTAINER = {"container": "Container name or id."}


class _Relayed:
    """A download whose bytes go from the engine's socket to the client's inside the kernel.

    gunicorn hands the client's socket to the application (``environ["gunicorn.socket"]``, as
    WebSocket libraries use it) and sends the status line and headers on the body's first
    write, even an empty one. The rest is written to the socket by ``relay_to``, in the framing
    gunicorn chose (chunks for HTTP/1.1; gunicorn writes the last one when the body ends). An
    engine failure raises before that last chunk, so the response is cut as when iterated.
    """

    def __init__(self, stream: EngineByteStream, sink: socket.socket, chunked: bool) -> None:
        self._stream = stream
        self._sink = sink
        self._chunked = chunked

    def __iter__(self) -> Iterator[bytes]:
        yield b""
        self._stream.relay_to(self._sink, chunked=self._chunked, sent=observe_stream_out)

    def close(self) -> None:
        self._stream.close()


def _client_socket() -> socket.socket | None:
    """The client's plain, blocking TCP socket when the server hands it out (gunicorn does)."""
    sink = request.environ.get("gunicorn.socket")
    if type(sink) is not socket.socket or sink.gettimeout() is not None:
        return None  # another server, TLS (an SSLSocket) or a socket with a timeout
    return sink


def _download(open_stream: Callable[[], EngineByteStream], filename: str) -> Response:
    """A tar download of what ``open_stream`` opens; HEAD checks all but opens nothing."""
    # No stream_with_context: the stream needs no request context, and its own close() (called
    # by the server when the response ends, or when the client leaves mid-way) closes the
    # engine connection, even if the body was never iterated.
    body: Iterable[bytes] = iter(())
    if request.method != "HEAD":
        take_transfer_slot()  # 503 TOO_MANY_TRANSFERS when every slot is taken
        body = stream = open_stream()
        sink = _client_socket()
        if sink is not None and stream.relayable:
            chunked = request.environ["SERVER_PROTOCOL"] != "HTTP/1.0"
            body = _Relayed(stream, sink, chunked)
    response = Response(body, mimetype=TAR_MIME)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response


def _upload() -> UploadStream:
    """The request body as an UploadStream; refuses wrong types, oversize and empty bodies."""
    check_archive_mimetype(request.mimetype)
    take_transfer_slot()
    upload = UploadStream(
        request.stream,
        declared_length=request.content_length,
        limit=current_app.config.get("BERTH_MAX_UPLOAD_BYTES"),
    )
    if upload.empty:
        raise InvalidArchive("The body is empty: send a tar archive.")
    return upload


def _saved_name(engine: Engine, ref: str) -> str:
    """What to ask the engine to save for ``ref`` (one image): ``name`` means ``name:latest``."""
    validate_image_ref(ref)
    details = engine.inspect_image_raw(ref)  # 404 before the first byte
    if is_image_id(ref):
        return ref
    parsed = parse_reference(ref)
    if parsed.tag or parsed.digest:
        return ref
    tagged = str(parsed.with_default_tag())
    # A bare hex word the engine resolved as a short id, not as a name: save that image.
    return tagged if tagged in (details.get("RepoTags") or []) else details["Id"]


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
    name = _saved_name(engine, ref)
    return _download(lambda: engine.save_images([name]), image_archive_name(name))


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
    names = unique_in_order(query["reference"])
    for name in names:
        parsed = None if is_image_id(name) else parse_reference(name)
        if parsed is not None and not parsed.tag and not parsed.digest:
            try:
                engine.require_repository(name)
                continue
            except ImageNotFound:
                pass  # perhaps a short image id
        engine.inspect_image_raw(name)
    return _download(lambda: engine.save_images(names), images_archive_name(names))


@bp.post("/archives")
@operation(
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
    upload = _upload()
    ndjson = wants_ndjson()
    engine = get_engine()

    def finish(progress: Progress) -> dict[str, Any]:
        report = parse_load_messages(progress.messages)
        if report.empty:
            raise InvalidArchive("The archive holds no image: the engine loaded nothing.")
        ids = engine.resolve_image_ids(report.references) + report.image_ids
        return {"loaded": report.references, "ids": unique_in_order(ids)}

    if wants_async():

        def run(ctx, body):
            events = engine.load_images(body, quiet=False)
            progress = ctx.follow(events, Progress(classify=classify_archive_error))
            return schemas.load_result.dump(finish(progress))

        return start_spooled_job("load", None, complete_tar(upload), run)
    with ReadAhead(upload, name="upload") as body:  # the client's next chunks arrive meanwhile
        events = engine.load_images(
            complete_tar(body), length=request.content_length, quiet=not ndjson
        )
    progress = Progress(classify=classify_archive_error)
    return run_progress(
        events, finish, schemas.load_result, progress, status=200 if ndjson else 201
    )


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
    return _download(
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
    changes = validate_changes(query["change"], field="change")
    ref = parse_reference(query["reference"]).with_default_tag() if "reference" in query else None
    with ReadAhead(_upload(), name="upload") as body:
        image_id = get_engine().import_image(
            complete_tar(body),
            length=request.content_length,
            repository=ref.repository if ref else None,
            tag=ref.tag if ref else None,
            message=query.get("message"),
            changes=changes,
        )
    reference = str(ref) if ref else None
    location = "/v1/images/" + (quote(reference, safe="/:@") if reference else image_id)
    return {"id": image_id, "reference": reference}, 201, {"Location": location}
