"""JSON logs, the request id rule and the access line's fields.

No Flask here: ``app.http.access_log`` calls :func:`log_access` for both request paths.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time

from app.domain.times import rfc3339
from app.observability.log_writer import BatchedLineHandler

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("berth.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra={"berth": {...}}``."""

    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def _time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached, text = self._second
        if cached != second:  # the date and clock once a second, not once a line
            text = rfc3339(second, "seconds").removesuffix("Z")
            self._second = (second, text)
        return f"{text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self._time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "berth", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Send the ``berth`` loggers to stderr as JSON lines at ``level``."""
    logging.Formatter.converter = time.gmtime
    # No line Berth or gunicorn writes shows the caller's file, thread or process name; not
    # gathering them for each record is the logging HOWTO's own advice ("Optimization").
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger("berth")
    root.setLevel(level.upper())
    if not any(getattr(h, "berth", False) for h in root.handlers):
        handler = BatchedLineHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.berth = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False


def request_id_from(given: str) -> str:
    """The client's ``X-Request-Id`` if it is sane, else a new random id."""
    return given if given and _SANE_REQUEST_ID.fullmatch(given) else secrets.token_hex(16)


def log_access(
    *,
    request_id: str,
    method: str,
    path: str,
    status: int,
    token: str | None,
    remote: str | None,
    seconds: float,
) -> None:
    """The one access line per request (``app.http.access_log.RequestRecord`` writes it)."""
    if access_log.isEnabledFor(logging.INFO):
        fields = {
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "token": token,
            "remote": remote,
            "duration_ms": round(seconds * 1000, 2),
        }
        access_log.info("request", extra={"berth": fields})
