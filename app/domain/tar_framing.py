"""Image archives (save, load, export, import): the logic that is neither HTTP nor docker-py.

Following the framing of a tar stream as it passes through, reading what ``docker load`` reports,
classifying the engine's complaints about an archive, and naming the files a download is saved
as. Plain logic, unit-tested without an engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.domain import jsonsafe
from app.domain.references import archive_filename
from app.errors import BerthError, EngineError, InvalidArchive

TAR_MIME = "application/x-tar"

# What the engine says about a loaded image, one line each.
_LOADED_REF = re.compile(r"^Loaded image: (\S+)$")
_LOADED_ID = re.compile(r"^Loaded image ID: (sha256:[0-9a-f]{64})$")
# The engine unpacks an upload under its data root (``.../tmp/docker-import-123/``) and names
# that directory in its errors; the client only needs the part inside the archive.
_ENGINE_TMP_DIR = re.compile(r"(?:/[^\s/:]+)*/docker-import-\d+/?")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s/:]+/)+([^\s/:]+)")
# Failures of the engine itself, not of what it was sent.
_ENGINE_FAULTS = ("no space left on device", "read-only file system", "input/output error")


@dataclass
class LoadReport:
    """What the engine says it loaded: references in order, and untagged image ids."""

    references: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.references and not self.image_ids


def parse_load_messages(messages: Iterable[str]) -> LoadReport:
    """Read ``Loaded image: name:tag`` and ``Loaded image ID: sha256:...`` lines."""
    report = LoadReport()
    for message in messages:
        for line in message.splitlines():
            line = line.strip()
            ref = _LOADED_REF.match(line)
            if ref and ref.group(1) not in report.references:
                report.references.append(ref.group(1))
                continue
            image_id = _LOADED_ID.match(line)
            if image_id and image_id.group(1) not in report.image_ids:
                report.image_ids.append(image_id.group(1))
    return report


def unique_in_order(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)


def engine_reason(message: str) -> str:
    """The engine's message without the host paths it mentions (they are no client's business)."""
    text = _ENGINE_TMP_DIR.sub("", message.strip())
    return _ABSOLUTE_PATH.sub(r"\1", text)


def classify_archive_error(message: str) -> BerthError:
    """The BerthError an engine complaint about an uploaded archive means.

    The archive is at fault (400 INVALID_ARCHIVE, with the engine's reason) unless the engine
    reports a fault of its own, such as a full disk (502 ENGINE_ERROR).
    """
    reason = engine_reason(message)
    if any(fault in reason.lower() for fault in _ENGINE_FAULTS):
        return EngineError(f"The engine could not store the archive: {reason}")
    return InvalidArchive(f"The engine rejected the archive: {reason}")


def image_archive_name(reference: str) -> str:
    """The download's file name: ``ubuntu:14.04`` → ``ubuntu_14.04.tar``; ids are shortened."""
    if reference.startswith("sha256:") and len(reference) > 19:
        reference = reference[:19]
    return archive_filename(reference)


def images_archive_name(references: list[str]) -> str:
    """One reference names the file after it; several give ``images.tar``."""
    return image_archive_name(references[0]) if len(references) == 1 else "images.tar"


def container_archive_name(name: str) -> str:
    """A container's export is named after the container: ``web-1`` → ``web-1.tar``."""
    return archive_filename(name.lstrip("/"))


BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
# Member types whose size field does not count data blocks (as Go's archive/tar reads them).
_HEADER_ONLY_TYPES = frozenset(b"123456")
_PAX_MAX = 1024 * 1024
_UNBOUNDED = 1 << 62


class TarFramingError(ValueError):
    """The bytes stop being a well-formed tar stream; ``tail`` holds what was found instead."""

    def __init__(self, message: str, tail: bytes = b"", *, inside_member: bool = False) -> None:
        super().__init__(message)
        self.tail = tail
        self.inside_member = inside_member


def _octal(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 (sizes of 8 GiB and more)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.replace(b"\0", b" ").strip()
    return int(text, 8) if text else 0


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = _octal(block[148:156])
    except ValueError:
        return False
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * 0x20
    if stored == unsigned:
        return True
    # Some old writers summed signed bytes.
    return stored == unsigned - 256 * sum(1 for b in rest if b & 0x80)


def _pax_size(data: bytes) -> int | None:
    """The ``size`` record of a PAX extended header, if it has one."""
    size = None
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            break
        if length <= 0:
            break
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        if key == b"size":
            try:
                size = int(value)
            except ValueError:
                pass
        pos += length
    return size


class TarFraming:
    """Follows the framing of a tar stream passing through, without keeping its data.

    Headers (checksummed) and the data blocks their sizes announce must alternate until two zero
    blocks end the archive; only zero padding may follow. The engine reports a failure in the
    middle of ``docker save`` or ``docker export`` by writing its error message into the stream
    and ending the HTTP response normally; this is how such a stream is told from a complete one.
    """

    def __init__(self) -> None:
        self.offset = 0
        self.ended = False
        self.unfollowable = False
        self._header = bytearray()
        self._skip = 0
        self._zeros = 0
        self._pax: bytearray | None = None
        self._pax_left = 0
        self._next_size: int | None = None

    def feed(self, chunk: bytes) -> None:
        """Check the next bytes of the stream; raise TarFramingError where the framing breaks."""
        view = memoryview(chunk)
        pos, end = 0, len(view)
        while pos < end and not self.unfollowable:
            if self.ended:
                rest = bytes(view[pos:])
                if rest.count(0) != len(rest):
                    raise TarFramingError(
                        f"data follows the end of the archive at byte {self.offset + pos}",
                        rest.lstrip(b"\0")[:BLOCK],
                    )
                break
            if self._skip:
                take = min(self._skip, end - pos)
                if self._pax is not None and self._pax_left:
                    keep = min(take, self._pax_left)
                    self._pax += view[pos : pos + keep]
                    self._pax_left -= keep
                self._skip -= take
                pos += take
                if not self._skip and self._pax is not None:
                    self._next_size = _pax_size(bytes(self._pax))
                    self._pax = None
                continue
            take = min(BLOCK - len(self._header), end - pos)
            self._header += view[pos : pos + take]
            pos += take
            if len(self._header) == BLOCK:
                block = bytes(self._header)
                self._header.clear()
                self._on_header(block, self.offset + pos - BLOCK)
        self.offset += end

    def _on_header(self, block: bytes, at: int) -> None:
        if block == _ZERO_BLOCK:
            self._zeros += 1
            self.ended = self._zeros == 2
            return
        if self._zeros or not _checksum_ok(block):
            raise TarFramingError(f"no valid tar header at byte {at}", block)
        typeflag = block[156]
        size = self._next_size if self._next_size is not None else _octal(block[124:136])
        self._next_size = None
        if typeflag in _HEADER_ONLY_TYPES:
            size = 0
        elif typeflag == ord("S"):  # GNU sparse: its extra headers are not followed here
            self.unfollowable = True
            return
        elif typeflag == ord("x") and size <= _PAX_MAX:
            self._pax, self._pax_left = bytearray(), size
        self._skip = size + (-size % BLOCK)

    def unseen(self) -> int:
        """How many of the next bytes are member data that may pass without being looked at."""
        if self.unfollowable:
            return _UNBOUNDED
        return 0 if self._pax is not None else self._skip

    def skip(self, size: int) -> None:
        """``size`` bytes (at most ``unseen()``) passed without being looked at."""
        if not self.unfollowable:
            self._skip -= size
        self.offset += size

    def finish(self) -> None:
        """The stream ended: raise TarFramingError unless the archive was complete."""
        if self.unfollowable or self.ended:
            return
        if self._header or self._skip:
            raise TarFramingError(
                f"it breaks off inside a member at byte {self.offset}",
                bytes(self._header),
                inside_member=True,
            )
        raise TarFramingError(f"it ends at byte {self.offset} without its end blocks")


def engine_error_text(tail: bytes) -> str:
    """The engine's message in bytes it wrote into a stream instead of archive data."""
    text = tail.rstrip(b"\0").decode("utf-8", "replace").strip()
    try:
        event = jsonsafe.loads(text.splitlines()[0]) if text else None
    except ValueError:
        event = None
    if isinstance(event, dict):
        text = str((event.get("errorDetail") or {}).get("message") or event.get("error") or text)
    return engine_reason(text[:300])
