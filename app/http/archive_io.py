"""Archive bodies both ways: downloads sent to the client, uploads received from it.

A download streams the engine's tar as it is produced, inside the kernel when the server hands
out the client's socket; an upload is read from ``request.stream`` in chunks. Each takes a
transfer slot (``app.http.transfers``) before its first byte.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from flask import Response, current_app, request

from app.domain.tar_framing import TAR_MIME
from app.errors import InvalidArchive
from app.http.transfers import take_transfer_slot
from app.http.uploads import UploadStream, check_archive_mimetype
from app.observability.metrics import observe_stream_out

if TYPE_CHECKING:
    from app.engine.archives import EngineByteStream


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


def client_socket() -> socket.socket | None:
    """The client's plain, blocking TCP socket when the server hands it out (gunicorn does)."""
    sink = request.environ.get("gunicorn.socket")
    if type(sink) is not socket.socket or sink.gettimeout() is not None:
        return None  # another server, TLS (an SSLSocket) or a socket with a timeout
    return sink


def download(open_stream: Callable[[], EngineByteStream], filename: str) -> Response:
    """A tar download of what ``open_stream`` opens; HEAD checks all but opens nothing."""
    # No stream_with_context: the stream needs no request context, and its own close() (called
    # by the server when the response ends, or when the client leaves mid-way) closes the
    # engine connection, even if the body was never iterated.
    body: Iterable[bytes] = iter(())
    if request.method != "HEAD":
        take_transfer_slot()  # 503 TOO_MANY_TRANSFERS when every slot is taken
        body = stream = open_stream()
        sink = client_socket()
        if sink is not None and stream.relayable:
            chunked = request.environ["SERVER_PROTOCOL"] != "HTTP/1.0"
            body = _Relayed(stream, sink, chunked)
    response = Response(body, mimetype=TAR_MIME)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response


def receive_archive() -> UploadStream:
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
