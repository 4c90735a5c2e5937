"""JSON logs and the per-request access line with its request id."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request

from app.metrics import observe_request

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("berth.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra={"berth": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
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
    root = logging.getLogger("berth")
    root.setLevel(level.upper())
    if not any(getattr(h, "berth", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.berth = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False


def init_request_logging(app: Flask) -> None:
    """Assign a request id, echo it, and log one line per request when the response closes."""

    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-Id"] = request_id
        principal = g.get("principal")
        fields = {
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "token": principal.name if principal else None,
            "remote": request.remote_addr,
        }
        started = g.get("started", time.perf_counter())

        # For streamed bodies the line is written when the stream ends, with its true duration.
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        observe_request(
            request.method,
            rule,
            response.status_code,
            None if response.is_streamed else time.perf_counter() - started,
        )

        def _log() -> None:
            fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            access_log.info("request", extra={"berth": fields})

        if response.is_streamed:
            response.call_on_close(_log)
        else:
            _log()
        return response
