"""The audit trail: one JSON line per mutating call in ``BERTH_DATA_DIR/audit.log``.

A record says who (token name), what (operation, engine, target), when, and how it ended (HTTP
status, image ids and references, error code), with the request id. It never holds a secret: no
token, no credential, no request body. Lines are appended with O_APPEND, so every gunicorn worker
writes to the same file safely. The file rotates by size (``audit.log.1`` ... ``audit.log.N``) and
is read back newest first, block by block from the end, one page at a time.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from app.domain.ndjson import json_line
from app.domain.times import rfc3339

AUDIT_FILE = "audit.log"
LOCK_SUFFIX = ".lock"
BLOCK_BYTES = 64 * 1024
_ID_KEYS = ("id", "ids", "deleted")
_REF_KEYS = ("reference", "loaded", "untagged")


def now() -> str:
    return rfc3339(datetime.now(UTC))


def outcome(payload: Any) -> tuple[list[str], list[str]]:
    """Image ids and references named in a result payload (``id``, ``deleted``, ``loaded``...)."""
    ids: list[str] = []
    refs: list[str] = []
    if not isinstance(payload, dict):
        return ids, refs
    for keys, out in ((_ID_KEYS, ids), (_REF_KEYS, refs)):
        for key in keys:
            value = payload.get(key)
            values = value if isinstance(value, list) else [value]
            out.extend(str(v) for v in values if isinstance(v, str) and v)
    return ids, refs


class CursorExpired(ValueError):
    """A page cursor names a file that rotation has since removed, or is not a cursor."""


def encode_cursor(inode: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{inode}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        inode, offset = (int(part) for part in text.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorExpired("not a cursor of this audit log") from None
    if inode < 0 or offset < 0:
        raise CursorExpired("not a cursor of this audit log")
    return inode, offset


def lines_backwards(f: BinaryIO, end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of the non-empty lines before byte ``end``, last line first."""
    position, head = end, b""
    while position > 0:
        size = min(BLOCK_BYTES, position)
        position -= size
        f.seek(position)
        parts = (f.read(size) + head).split(b"\n")
        head = parts[0]  # may continue in the block before
        offset = position + len(head) + 1
        found = []
        for part in parts[1:]:
            found.append((offset, part))
            offset += len(part) + 1
        yield from ((o, line) for o, line in reversed(found) if line)
    if head:
        yield 0, head


class AuditLog:
    """Append-only JSON lines, rotated by size; read back newest first, a page at a time."""

    def __init__(self, directory: str | Path, max_bytes: int = 0, backups: int = 5) -> None:
        self.path = Path(directory) / AUDIT_FILE
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        """The log and its backups, newest first (some may not exist)."""
        return [self.path] + [self._backup(n) for n in range(1, self.backups + 1)]

    def _backup(self, number: int) -> Path:
        return self.path.with_name(f"{AUDIT_FILE}.{number}")

    def write(self, record: dict[str, Any]) -> None:
        line = json_line(record, default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            size = self._size() if self.max_bytes else 0
            if size and size + len(line) > self.max_bytes:
                self._rotate(len(line))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    @contextmanager
    def _flock(self, kind: int) -> Iterator[None]:
        fd = os.open(str(self.path) + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, kind)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _rotate(self, incoming: int) -> None:
        # The renames of logging.handlers.RotatingFileHandler, but safe across the gunicorn
        # workers that all append here: an exclusive flock on a file beside the log serialises
        # rotations, and the size is checked again inside it, so of several processes crossing
        # the limit together only the first rotates and the others append to the fresh file.
        # Every write opens the file by name, so none keeps writing to a renamed one for long.
        with self._flock(fcntl.LOCK_EX):
            size = self._size()
            if size == 0 or size + incoming <= self.max_bytes:
                return
            for number in range(self.backups - 1, 0, -1):
                if self._backup(number).exists():
                    os.replace(self._backup(number), self._backup(number + 1))
            os.replace(self.path, self._backup(1))

    def _open_all(self, stack: ExitStack) -> list[tuple[int, BinaryIO]]:
        """Every existing file, newest first, opened together under a shared lock so that no
        rotation happens in between (an open file keeps its content when renamed)."""
        opened: list[tuple[int, BinaryIO]] = []
        if not self.path.parent.exists():
            return opened
        with self._flock(fcntl.LOCK_SH):
            for path in self.files():
                try:
                    f = stack.enter_context(open(path, "rb"))
                except FileNotFoundError:
                    continue
                opened.append((os.fstat(f.fileno()).st_ino, f))
        return opened

    def page(
        self,
        limit: int,
        before: str | None = None,
        accept: Callable[[dict[str, Any]], bool] = lambda record: True,
        stop: Callable[[dict[str, Any]], bool] = lambda record: False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` records ``accept`` keeps, newest first, older than the cursor
        ``before``; and the cursor of the next page (None at the end, or once ``stop`` is true
        for a record). Reads from the end, block by block, only as far as the page needs."""
        with ExitStack() as stack:
            files = self._open_all(stack)
            first, end = 0, None
            if before is not None:
                inode, end = decode_cursor(before)
                first = next((i for i, (ino, _) in enumerate(files) if ino == inode), -1)
                if first < 0:
                    raise CursorExpired("the page's file was rotated away")
            records: list[dict[str, Any]] = []
            for index in range(first, len(files)):
                inode, f = files[index]
                size = os.fstat(f.fileno()).st_size
                stop_at = min(end, size) if index == first and end is not None else size
                for offset, line in lines_backwards(f, stop_at):
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a torn line after a crash is skipped, not fatal
                    if not isinstance(record, dict):
                        continue
                    if stop(record):
                        return records, None
                    if accept(record):
                        records.append(record)
                        if len(records) >= limit:
                            return records, encode_cursor(inode, offset)
            return records, None
