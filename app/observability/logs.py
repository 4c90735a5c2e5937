"""JSON logs and the per-request access line with its request id."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time

from flask import Flask, Response, g, request

from app.observability.log_writer import BatchedLineHandler
from app.observability.metrics import observe_request

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("berth.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra={"berth": {...}}``."""

    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def _time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached, text = self._second
        if cached != second:  # strftime once a second, not once a line
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
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
    """The one access line per request (from Flask's hooks, or ``app.http.cached_reads``)."""
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


def init_request_logging(app: Flask) -> None:
    """Assign a request id, echo it, and log one line per request when the response closes."""

    @app.before_request
    def _start() -> None:
        g.request_id = request_id_from(request.headers.get("X-Request-Id", ""))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or request_id_from("")
        response.headers["X-Request-Id"] = request_id
        principal = g.get("principal")
        token = principal.name if principal else None
        started = g.get("started", time.perf_counter())
        method, path, status = request.method, request.path, response.status_code
        remote = request.remote_addr

        # For streamed bodies the line is written when the stream ends, with its true duration.
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        observe_request(
            method, rule, status, None if response.is_streamed else time.perf_counter() - started
        )

        def _log() -> None:
            log_access(
                request_id=request_id,
                method=method,
                path=path,
                status=status,
                token=token,
                remote=remote,
                seconds=time.perf_counter() - started,
            )

        if response.is_streamed:
            response.call_on_close(_log)
        else:
            _log()
        return response
