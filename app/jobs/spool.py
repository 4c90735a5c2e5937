"""Request bodies kept on disk for a job that runs after the request has ended.

An asynchronous load must receive the whole upload before it can answer 202, so the body is
written to ``BERTH_DATA_DIR/spool`` (mode 0600) and read back by the job, which removes it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK_BYTES = 1024 * 1024
ORPHAN_SECONDS = 24 * 3600


class Spool:
    """One spooled body."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size

    @classmethod
    def save(cls, chunks: Iterable[bytes], directory: Path) -> Spool:
        """Write ``chunks`` to a new file in ``directory``; nothing is left behind on failure."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{uuid.uuid4().hex}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return cls(path)

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            while chunk := f.read(size):
                yield chunk

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def remove_orphans(directory: Path, older_than: float = ORPHAN_SECONDS) -> int:
    """Delete spooled bodies no job removed (their worker died); the number removed."""
    removed = 0
    cutoff = time.time() - older_than
    for path in directory.glob("*.part") if directory.is_dir() else ():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            pass
    return removed
