"""The audit trail: one JSON line per mutating call in ``BERTH_DATA_DIR/audit.log``.

A record says who (token name), what (operation, engine, target), when, and how it ended (HTTP
status, image ids and references, error code), with the request id. It never holds a secret: no
token, no credential, no request body. Lines are appended with O_APPEND, so every gunicorn worker
writes to the same file safely.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.log"
_ID_KEYS = ("id", "ids", "deleted")
_REF_KEYS = ("reference", "loaded", "untagged")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


class AuditLog:
    """Append-only JSON lines; readable back with filters."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / AUDIT_FILE
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def records(self) -> Iterable[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue  # a torn last line after a crash is skipped, not fatal
        except FileNotFoundError:
            return

    def query(
        self, since: datetime | None = None, operation: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` records at or after ``since`` for ``operation``, oldest first."""
        since_text = (
            since.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            if since
            else None
        )
        matches = [
            r
            for r in self.records()
            if (since_text is None or r.get("time", "") >= since_text)
            and (operation is None or r.get("operation") == operation)
        ]
        return matches[-limit:]
