"""Passing a checked Engine API call on to the engine and its answer back, as the engine sent it.

Bodies are never read whole: answers (JSON, progress and event streams) go out chunk by chunk as
the engine writes them, uploads (``docker load``, ``docker import``) reach the engine as they
arrive, and archive downloads take the native routes' path (relayed inside the kernel where
the server allows it). A mutating call's audit record is written when its answer ends, a failure
if the engine's status says so or its progress stream carried an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

from flask import Response, current_app, g, request, stream_with_context

from app.engine.read_ahead import ReadAhead
from app.errors import ClientClosed, EngineReportedError, PayloadTooLarge
from app.http.accessors import get_engine
from app.http.archive_io import download as archive_download
from app.http.auditing import finish_audit
from app.http.transfers import take_transfer_slot
from app.http.uploads import UploadStream

if TYPE_CHECKING:
    from app.engine.archives import EngineByteStream
    from app.engine.passthrough import EngineAnswer

# Request headers the engine reads from Docker's clients; Authorization (Berth's token) and
# the hop-by-hop ones stay here.
FORWARDED_HEADERS = ("Content-Type", "X-Registry-Auth", "User-Agent", "Accept")
_ERROR_MARK = b'"errorDetail"'


def engine_path(rest: str | None = None) -> str:
    """The Engine API path of this request (``/v1.41/images/json``): Berth's prefix removed."""
    path = request.path
    prefix = f"/engines/{g.engine_name}"
    path = path[len(prefix) :] if path.startswith(prefix) else path
    return quote(path if rest is None else rest, safe="/:@+=,")


def forwarded_headers() -> dict[str, str]:
    return {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}


def small_body() -> bytes | None:
    """A JSON request body (commit's config, auth's credentials), bounded like the native API's."""
    limit = current_app.config["BERTH_MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request bodies are limited to {limit} bytes here.")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"Request bodies are limited to {limit} bytes here.")
    return data or None


def upload_body() -> Iterator[bytes]:
    """The request body as it arrives (an archive), within BERTH_MAX_UPLOAD_BYTES."""
    take_transfer_slot()
    upload = UploadStream(
        request.stream,
        declared_length=request.content_length,
        limit=current_app.config.get("BERTH_MAX_UPLOAD_BYTES"),
    )
    return iter(upload)


def forward(
    query: str | None = None,
    body: bytes | Iterable[bytes] | None = None,
    *,
    quick: bool = False,
    path: str | None = None,
) -> Response:
    """Send this request on to the engine (``query``: the query string, by default the client's;
    ``body``: by default the client's, a short one)."""
    engine = get_engine()
    query = request.query_string.decode("latin-1") if query is None else query
    method = request.method
    if body is None and method in ("POST", "PUT"):
        body = small_body()  # docker-py sends "{}" with a push, for instance
    if isinstance(body, Iterable) and not isinstance(body, bytes):
        with ReadAhead(body, name="upload") as ahead:  # the client's next chunks arrive meanwhile
            answer = engine.forward(
                method,
                path or engine_path(),
                query,
                forwarded_headers(),
                ahead,
                request.content_length,
            )
    else:
        answer = engine.forward(
            method, path or engine_path(), query, forwarded_headers(), body, quick=quick
        )
    return answered(answer)


def answered(answer: EngineAnswer) -> Response:
    """The engine's answer as this request's response; the audit record closes at its end."""
    body: Iterable[bytes] = answer
    if request.method == "HEAD":
        answer.close()
        body = ()
    elif g.get("audit") is not None:
        body = stream_with_context(_audited(answer, answer.status))
    response = Response(body, status=answer.status)
    response.headers.remove("Content-Type")
    for name, value in answer.headers.items():
        response.headers[name] = value
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _audited(chunks: Iterable[bytes], status: int) -> Iterator[bytes]:
    failed = status >= 400
    tail = b""
    finished = False
    try:
        for chunk in chunks:
            if not failed and _ERROR_MARK in tail + chunk:
                failed = True
            tail = chunk[-len(_ERROR_MARK) :]
            yield chunk
        finished = True
    finally:
        if not finished:
            finish_audit(ClientClosed.status, code=ClientClosed.code)
        elif failed:
            finish_audit(status if status >= 400 else 502, code=EngineReportedError.code)
        else:
            finish_audit(status)


def download(open_stream: Callable[[], EngineByteStream], filename: str) -> Response:
    """An archive download, as the native routes send one, with the engine's headers."""
    response = archive_download(open_stream, filename)
    response.headers.update(get_engine().api_headers())
    return response
