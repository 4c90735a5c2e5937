"""The body of an engine download (``docker save``, ``docker export``), handed out in chunks.

``EngineByteStream`` iterates the engine's response body, read ahead in a helper thread, and its
``close()`` closes that engine connection, whether the body was read to the end, abandoned by a
client that went away, or never iterated at all. An HTTP/1.0 body on the engine's unix socket
(``app.engine.raw_get``) can instead be relayed to a client's socket inside the kernel
(``relay_to``). The tar framing is followed either way, so a broken archive is never passed on
as a complete one.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator

import requests

from app.domain.tar_framing import TarFraming, TarFramingError, engine_error_text
from app.engine import docker_api, relay
from app.engine.raw_get import RawBody
from app.engine.read_ahead import ReadAhead
from app.errors import EngineError

log = logging.getLogger("berth.archives")


class ResponseBody:
    """A docker-py streaming response's body, read as it comes."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self.socket = docker_api.raw_socket(response)

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

    def __init__(self, body: ResponseBody | RawBody, what: str, chunk_size: int) -> None:
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
