"""Archives: save, load, export and import, streamed both ways with constant memory.

Downloads (``docker save``, ``docker export``) are opened eagerly, so that an engine refusal is
raised before the HTTP response starts, and handed out as an ``EngineByteStream``: an iterator
over the engine's response body, read ahead in a helper thread, whose ``close()`` closes that
engine connection, whether the body was read to the end, abandoned by a client that went away,
or never iterated at all. On the engine's unix socket a download is asked for in HTTP/1.0
(``raw_get``), so that its unframed body can also be relayed to a client's socket inside the
kernel (``relay_to``); over TCP, TLS or SSH it comes through docker-py.

Uploads (``docker load``, ``docker import``) take any iterable of byte chunks as the request
body; docker-py's ``requests`` sends it as it is produced (with the client's Content-Length when
known, chunked otherwise). An exception raised by the iterable (upload limit passed, client
gone, truncated tar) aborts the engine request on a connection that is then closed, so the
engine sees a truncated body and rejects it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import docker
import docker.errors
import requests

from app.domain.progress import error_message
from app.domain.tar_framing import (
    TarFraming,
    TarFramingError,
    classify_archive_error,
    engine_error_text,
    engine_reason,
)
from app.engine import relay
from app.engine.base import EngineConnection, explanation, translate
from app.engine.raw_get import RawBody, raw_get
from app.engine.read_ahead import ReadAhead
from app.engine.streams import raw_socket
from app.errors import BerthError, EngineError, EngineUnavailable, ImageNotFound
from app.observability.metrics import observe_engine_call

log = logging.getLogger("berth.archives")

# Bytes read from the engine per chunk of a download; measured in bench/archives.py (README,
# "Archives: speed and memory"): larger chunks gain nothing, smaller ones cost CPU per byte.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class _ResponseBody:
    """A docker-py streaming response's body, read as it comes."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.socket = raw_socket(response)

    def read(self, size: int) -> bytes:
        return self._response.raw.read(size, decode_content=False)

    def close(self) -> None:
        self._response.close()


class EngineByteStream:
    """The body of an engine download, in chunks; iterate it, and always ``close()`` it.

    The first chunk is read by ``prime()`` before the HTTP response starts; the rest is read
    ahead in a helper thread (``ReadAhead``), so that the engine keeps sending while the client
    receives. The tar framing is followed as the bytes pass (``TarFraming``): a broken engine
    connection, or an error the engine wrote into the stream in place of the rest of the
    archive, raises EngineError from the iteration before the bad bytes are handed out. The HTTP
    server then aborts the response instead of ending it as if the archive were complete.
    """

    def __init__(self, body: _ResponseBody | RawBody, what: str, chunk_size: int) -> None:
        self._body = body
        self._what = what
        self._chunk_size = chunk_size
        self._framing = TarFraming()
        self._pending: bytes | None = None
        self._ahead: ReadAhead | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.relayed = False  # sent by relay_to, inside the kernel
        self.finished = False
        self.failed = False
        self.closed = False

    def _stopping(self) -> bool:
        return self._ahead is not None and self._ahead.stopping

    def _read(self) -> bytes:
        try:
            chunk = self._body.read(self._chunk_size)
        except Exception as e:
            if self._stopping():
                return b""  # closed by the consumer: the read was interrupted on purpose
            raise self._failure(f"connection broken: {type(e).__name__}") from e
        if self._stopping():
            return b""
        try:
            if chunk:
                self._framing.feed(chunk)
            else:
                self._framing.finish()
        except TarFramingError as e:
            raise self._failure(str(e), engine_error_text(e.tail)) from e
        return chunk

    def _failure(self, reason: str, engine_said: str | None = None) -> EngineError:
        self.failed = True
        fields = {"stream": self._what, "bytes": self._framing.offset, "reason": reason}
        if engine_said:
            fields["engine"] = engine_said
        log.warning("engine stream failed; response cut", extra={"berth": fields})
        return EngineError(f"The engine's {self._what} stream failed.")

    def _chunks(self) -> Iterator[bytes]:
        while chunk := self._read():
            yield chunk

    def _interrupt(self) -> None:
        if self._body.socket is not None:
            try:
                self._body.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def prime(self) -> None:
        """Read the first chunk now, so that an engine failure surfaces before any byte is sent."""
        if self._pending is None and not self.closed:
            try:
                self._pending = self._read()
            except BaseException:
                self.close()
                raise

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._pending is not None:
            chunk, self._pending = self._pending, None
        elif self.closed:
            raise StopIteration
        else:
            if self._ahead is None:
                self._ahead = ReadAhead(
                    self._chunks(), interrupt=self._interrupt, name=f"engine-{self._what}"
                )
            try:
                chunk = next(self._ahead)
            except StopIteration:
                chunk = b""
            except BaseException:
                self.close()
                raise
        if not chunk:
            self.finished = True
            self.close()
            raise StopIteration
        self.sent += len(chunk)
        return chunk

    @property
    def relayable(self) -> bool:
        """True when ``relay_to`` can send the rest (an HTTP/1.0 body, on Linux)."""
        return isinstance(self._body, RawBody) and relay.available() and self._ahead is None

    def relay_to(self, sink: socket.socket, *, chunked: bool, sent: Callable[[int], None]) -> None:
        """Send the rest of the download to the blocking socket ``sink``, then close.

        The bytes go from the engine's socket to ``sink`` inside the kernel (``app.engine.relay``);
        the tar framing is followed as in iteration, and a broken stream raises EngineError
        (so the server cuts the response instead of ending it). An OSError writing to ``sink``
        (the client went away) is raised as it is.
        """
        assert isinstance(self._body, RawBody)
        self.relayed = True

        def count(size: int) -> None:
            self.sent += size
            sent(size)

        try:
            first = self._pending or b""  # the chunk read (and followed) before the response
            self._pending = None
            start = self._body.take_start()
            if start:
                self._framing.feed(start)
            relay.relay(
                self._body.socket,
                sink,
                self._framing,
                chunked=chunked,
                sent=count,
                lead=first + start,
            )
            self._framing.finish()
        except relay.SourceFailed as e:
            raise self._failure(f"connection broken: {e}") from e
        except TarFramingError as e:
            raise self._failure(str(e), engine_error_text(e.tail)) from e
        else:
            self.finished = True
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and close the engine connection (a half-read one is never reused)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._pending = None
        if self._ahead is not None:
            self._ahead.close()
        if self.finished:
            fields = {"stream": self._what, "bytes": self.sent, "relayed": self.relayed}
            log.info("stream sent", extra={"berth": fields})
        elif not self.failed:
            log.info(
                "stream closed before its end",
                extra={"berth": {"stream": self._what, "bytes": self.sent}},
            )
        self._body.close()


class _SizedBody:
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


def _body(chunks: Iterable[bytes], length: int | None) -> Iterable[bytes]:
    return _SizedBody(chunks, length) if length else chunks


def _raise_for_status(
    api: docker.APIClient, response: requests.Response, kind: str, target: str | None
) -> None:
    """Raise the BerthError for a refused download (closing the response)."""
    if response.status_code < 400:
        return
    try:
        try:
            api._raise_for_status(response)
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
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason
    response.url = url
    response.headers.update(answer.headers)
    response._content = content
    response._content_consumed = True
    response.encoding = "utf-8"
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
        api._raise_for_status(response)
    except docker.errors.APIError as e:
        raise classify_archive_error(explanation(e)) from e
    finally:
        response.close()


def _events(api: docker.APIClient, response: requests.Response, what: str) -> Iterator[dict]:
    """The engine's JSON progress events; the connection is closed when they end or are dropped."""
    try:
        with translate():
            yield from api._stream_helper(response, decode=True)
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
        url = api._url(*path)
        socket_path = self.connection.unix_socket
        if socket_path is None:
            with translate(kind, target):
                response = api._get(url, params=params, stream=True)
            _raise_for_status(api, response, kind, target)
            body: _ResponseBody | RawBody = _ResponseBody(response)
        else:
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
            response = api._post(
                api._url("/images/load"),
                data=_body(body, length),
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
            response = api._post(
                api._url("/images/create"),
                data=_body(body, length),
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
