"""Archives: save, load, export and import, streamed both ways with constant memory.

Downloads (``docker save``, ``docker export``) are opened eagerly, so that an engine refusal is
raised before the HTTP response starts, and handed out as an ``EngineByteStream``
(``app.engine.download_stream``). On the engine's unix socket a download is asked for in
HTTP/1.0 (``raw_get``), so that its unframed body can also be relayed to a client's socket
inside the kernel; over TCP, TLS or SSH it comes through docker-py.

Uploads (``docker load``, ``docker import``) take any iterable of byte chunks as the request
body; docker-py's ``requests`` sends it as it is produced (with the client's Content-Length when
known, chunked otherwise). An exception raised by the iterable (upload limit passed, client
gone, truncated tar) aborts the engine request on a connection that is then closed, so the
engine sees a truncated body and rejects it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import docker
import docker.errors
import requests

from app.domain.progress import error_message
from app.domain.tar_framing import classify_archive_error, engine_reason
from app.engine import docker_api
from app.engine.base import EngineConnection, explanation, translate
from app.engine.download_stream import EngineByteStream, ResponseBody
from app.engine.raw_get import RawBody, raw_get
from app.errors import BerthError, EngineError, EngineUnavailable, ImageNotFound
from app.observability.metrics import observe_engine_call

# Bytes read from the engine per chunk of a download: larger chunks gain nothing, smaller ones
# cost CPU per byte (docs/performance.md, "Archives: speed and memory").
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class SizedBody:
    """An iterable request body of known length: sent with Content-Length, chunk by chunk.

    (``requests`` sends an iterable with chunked encoding unless it has a length.) A body that
    ends short raises from its iterator, which aborts the request before the engine takes it.
    """

    def __init__(self, chunks: Iterable[bytes], length: int) -> None:
        self._chunks = chunks
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


def sized_body(chunks: Iterable[bytes], length: int | None) -> Iterable[bytes]:
    """``chunks`` sent with Content-Length when ``length`` is known, else chunked."""
    return SizedBody(chunks, length) if length else chunks


def _raise_for_status(
    api: docker.APIClient, response: requests.Response, kind: str, target: str | None
) -> None:
    """Raise the BerthError for a refused download (closing the response)."""
    if response.status_code < 400:
        return
    try:
        try:
            docker_api.raise_for_status(api, response)
        except docker.errors.APIError as e:
            if (e.status_code or 500) >= 500:
                reason = engine_reason(explanation(e))
                raise EngineError(f"The engine could not produce the archive: {reason}") from e
            with translate(kind, target):
                raise
    finally:
        response.close()


def _raw_download(
    api: docker.APIClient,
    socket_path: str,
    url: str,
    params: dict[str, Any],
    kind: str,
    target: str | None,
) -> RawBody:
    """GET ``url`` in HTTP/1.0 on the engine's socket: the body, or the refusal's BerthError.

    Like every stream (``STREAM_TIMEOUT``), the socket has no timeout: the engine may take
    minutes to stage a large archive before its first byte, and the relay needs it blocking.
    """
    path = urlsplit(url).path
    query = urlencode(params, doseq=True)
    request_target = f"{path}?{query}" if query else path
    started = time.perf_counter()
    try:
        answer = raw_get(socket_path, request_target, api.headers["User-Agent"])
    except OSError as e:
        raise EngineUnavailable("The Docker engine does not answer.") from e
    except ValueError as e:
        raise EngineError(f"The engine's answer could not be read: {e}") from e
    finally:
        observe_engine_call("GET", path, time.perf_counter() - started)
    if answer.status == 200:
        return answer.body
    content = answer.read_error_body()
    if answer.status < 400:
        raise EngineError(f"The engine answered {answer.status} to a download.")
    # A refusal reads as docker-py would have read it, and is translated the same way.
    response = docker_api.refusal(answer.status, answer.reason, url, answer.headers, content)
    _raise_for_status(api, response, kind, target)
    raise AssertionError("unreachable: _raise_for_status raised")


def _archive_refusal(api: docker.APIClient, response: requests.Response) -> None:
    """An upload answered with an HTTP error: the archive's fault unless the engine says otherwise.

    The engine answers 500 for an archive it cannot read (``docker import`` of garbage).
    """
    if response.status_code != 500:
        _raise_for_status(api, response, "image", None)
        return
    try:
        docker_api.raise_for_status(api, response)
    except docker.errors.APIError as e:
        raise classify_archive_error(explanation(e)) from e
    finally:
        response.close()


def _events(api: docker.APIClient, response: requests.Response, what: str) -> Iterator[dict]:
    """The engine's JSON progress events; the connection is closed when they end or are dropped."""
    try:
        with translate():
            yield from docker_api.json_events(api, response)
    except BerthError:
        raise
    except Exception as e:  # the engine's answer broke off (urllib3 protocol errors and the like)
        raise EngineError(f"The engine's answer to the {what} broke off.") from e
    finally:
        response.close()


class ArchivesMixin:
    """``docker save``/``load``/``export``/``import`` on one engine connection."""

    connection: EngineConnection

    # Downloads

    def require_repository(self, repository: str) -> list[str]:
        """The tags of ``repository`` (``docker save name`` saves them all); 404 when none."""
        with translate():
            images = self.connection.api.images(filters={"reference": [repository]})
        tags = sorted(
            tag
            for image in images
            for tag in image.get("RepoTags") or []
            if tag.rsplit(":", 1)[0] == repository
        )
        if not tags:
            raise ImageNotFound(f"No image of repository '{repository}' exists.", image=repository)
        return tags

    def save_images(self, names: list[str]) -> EngineByteStream:
        """Open the ``docker save`` tar of ``names`` (references or ids), first chunk read."""
        target = names[0] if len(names) == 1 else None
        return self._download("save", ("/images/get",), {"names": names}, "image", target)

    def export_container(self, container: str) -> EngineByteStream:
        """Open the ``docker export`` tar of a container's filesystem, first chunk read."""
        path = ("/containers/{0}/export", container)
        return self._download("export", path, {}, "container", container)

    def _download(
        self,
        what: str,
        path: tuple[str, ...],
        params: dict[str, Any],
        kind: str,
        target: str | None,
    ) -> EngineByteStream:
        """Open a download: ``path`` is docker-py's path format and its arguments."""
        api = self.connection.stream_api
        socket_path = self.connection.unix_socket
        if socket_path is None:
            with translate(kind, target):
                response = docker_api.get(api, *path, params=params, stream=True)
            _raise_for_status(api, response, kind, target)
            body: ResponseBody | RawBody = ResponseBody(response)
        else:
            url = docker_api.url(api, *path)
            body = _raw_download(api, socket_path, url, params, kind, target)
        stream = EngineByteStream(body, what, DOWNLOAD_CHUNK_BYTES)
        stream.prime()
        return stream

    # Uploads

    def load_images(
        self, body: Iterable[bytes], *, length: int | None = None, quiet: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Send an image archive to ``docker load``; the engine's progress events.

        ``length`` (the client's Content-Length, if it gave one) is passed on; without it the
        body goes chunked. The whole body is sent before this returns; the events (progress,
        ``Loaded image`` lines, errors) are read as the caller iterates.
        """
        api = self.connection.stream_api
        with translate():
            response = docker_api.post(
                api,
                "/images/load",
                data=sized_body(body, length),
                params={"quiet": "1" if quiet else "0"},
                headers={"Content-Type": "application/x-tar"},
                stream=True,
            )
        _archive_refusal(api, response)
        return _events(api, response, "load")

    def import_image(
        self,
        body: Iterable[bytes],
        *,
        length: int | None = None,
        repository: str | None = None,
        tag: str | None = None,
        message: str | None = None,
        changes: list[str] | None = None,
    ) -> str:
        """``docker import``: a root filesystem tar becomes a one-layer image; its id."""
        params: dict[str, Any] = {"fromSrc": "-"}
        if repository:
            params["repo"] = repository
            params["tag"] = tag or "latest"
        if message:
            params["message"] = message
        if changes:
            params["changes"] = list(changes)
        api = self.connection.stream_api
        with translate():
            response = docker_api.post(
                api,
                "/images/create",
                data=sized_body(body, length),
                params=params,
                headers={"Content-Type": "application/tar"},
                stream=True,
            )
        _archive_refusal(api, response)
        image_id = None
        for event in _events(api, response, "import"):
            failure = error_message(event)
            if failure is not None:
                raise classify_archive_error(failure)
            status = str(event.get("status") or "").strip()
            if status.startswith("sha256:"):
                image_id = status
        if image_id is None:
            raise EngineError("The engine did not say which image the import created.")
        return image_id

    def resolve_image_ids(self, references: list[str]) -> list[str]:
        """The id each reference points to now (loaded tags → ids)."""
        ids = []
        for ref in references:
            with translate("image", ref):
                ids.append(self.connection.api.inspect_image(ref)["Id"])
        return ids
