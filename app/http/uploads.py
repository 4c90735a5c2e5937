"""Binary request bodies, streamed: read in chunks as they arrive, counted, never buffered whole.

``UploadStream`` wraps the WSGI input (a fixed ``Content-Length`` body or a chunked one, which the
server de-chunks) and hands out chunks to whoever consumes it, the engine client in practice. It
enforces the upload limit while streaming and turns a body that stops early into an error, so
that the consumer's request is aborted rather than completed with half an archive.
Plain logic: no flask, no docker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from app.domain.tar_framing import TarFraming, TarFramingError
from app.errors import InvalidArchive, PayloadTooLarge, UnsupportedMediaType

# Bytes read from the client per chunk of an upload (why 1 MiB: docs/performance.md).
UPLOAD_CHUNK_BYTES = 1024 * 1024

# Tar archives, plain or gzip-compressed; no type at all is what `curl -T` sends.
ARCHIVE_MIMETYPES = frozenset(
    {
        "",
        "application/x-tar",
        "application/tar",
        "application/gzip",
        "application/x-gzip",
        "application/tar+gzip",
        "application/x-compressed-tar",
        "application/octet-stream",
    }
)


# gzip, bzip2, xz, zstd: compressed bodies go to the engine unchecked (it decompresses them).
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def check_archive_mimetype(mimetype: str) -> None:
    """Refuse bodies declared as something other than a (compressed) tar archive."""
    if mimetype.lower() not in ARCHIVE_MIMETYPES:
        raise UnsupportedMediaType(
            f"Send the archive as application/x-tar (gzip-compressed is accepted), not "
            f"{mimetype}: for example `curl -T image.tar -H 'Content-Type: application/x-tar'`."
        )


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MiB ({n} bytes)"


class UploadStream:
    """Iterate a request body in chunks of at most ``chunk_size`` bytes.

    ``declared_length`` is the request's Content-Length (None when chunked) and ``limit`` the
    most Berth accepts (None: no limit). A declared length over the limit is refused at once;
    a chunked body is counted and refused as soon as it passes the limit. A body that ends before
    its declared length, or whose connection breaks, raises InvalidArchive from the iteration.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        declared_length: int | None,
        limit: int | None,
        chunk_size: int | None = None,
    ) -> None:
        if limit is not None and declared_length is not None and declared_length > limit:
            raise PayloadTooLarge(
                f"The body is {_size(declared_length)}; uploads are limited to {_size(limit)}."
            )
        self._stream = stream
        self._declared = declared_length
        self._limit = limit
        self._chunk_size = chunk_size or UPLOAD_CHUNK_BYTES
        self._first: bytes | None = None
        self._iterated = False
        self.received = 0
        self.complete = False

    def _read(self) -> bytes:
        try:
            chunk = self._stream.read(self._chunk_size)
        except Exception as e:  # the client's connection broke (werkzeug, gunicorn, OS errors)
            raise InvalidArchive(
                f"The upload broke off after {_size(self.received)}; nothing was kept."
            ) from e
        self.received += len(chunk)
        if self._limit is not None and self.received > self._limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {_size(self._limit)}.")
        if not chunk:
            if self._declared is not None and self.received < self._declared:
                raise InvalidArchive(
                    f"The upload ended after {_size(self.received)} of the {self._declared} "
                    "bytes announced; nothing was kept."
                )
            self.complete = True
        return chunk

    def peek(self) -> bytes:
        """The first chunk, read now and handed out again by the iteration (b"" if empty)."""
        if self._first is None:
            self._first = self._read()
        return self._first

    @property
    def empty(self) -> bool:
        return self.peek() == b""

    def __iter__(self) -> Iterator[bytes]:
        if self._iterated:
            raise RuntimeError("an upload can be read only once")
        self._iterated = True
        chunk = self.peek()
        while chunk:
            yield chunk
            chunk = self._read()


def complete_tar(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass ``chunks`` on; if they form a plain tar cut at a member boundary, raise at the end.

    The engine loads or imports a tar cut between two members as if it were whole (its reader
    takes the end of the body for the end of the archive). Following the framing catches that.
    The last chunk is held back until the framing is checked, so the InvalidArchive raised then
    aborts the engine request before the engine has the whole body: it sees a truncated one and
    creates nothing. A tar cut inside a member, a compressed body, or a body that is no tar at
    all goes to the engine as it is: the engine rejects those itself, and its reason is what
    the client gets.
    """
    framing: TarFraming | None = TarFraming()
    held: bytes | None = None
    for chunk in chunks:
        if framing is not None:
            if framing.offset == 0 and chunk.startswith(_COMPRESSED):
                framing = None
            else:
                try:
                    framing.feed(chunk)
                except TarFramingError:
                    framing = None  # not a tar the engine can read either
        if held is not None:
            yield held
        held = chunk
    if framing is not None:
        try:
            framing.finish()
        except TarFramingError as e:
            if not e.inside_member:
                raise InvalidArchive(f"The archive is truncated: {e}; nothing was kept.") from e
    if held is not None:
        yield held
