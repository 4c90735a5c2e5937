"""One access line and one metrics count per request, whichever door answered it.

Flask's hooks (:func:`init_request_logging`) and the cached fast path (``app.http.cached_reads``)
both describe a request with :class:`RequestRecord`, built from the WSGI environ the same way,
and both account for it with :meth:`RequestRecord.answered` (or :meth:`RequestRecord.streaming`
for a body that is still being sent), so the two cannot log or count differently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from app.observability.logs import log_access, request_id_from
from app.observability.metrics import observe_request

UNMATCHED = "unmatched"  # the route label of a request no rule matched


def request_path(environ: dict[str, Any]) -> str:
    """PATH_INFO as Flask's ``request.path`` reads it (WSGI carries it as latin-1)."""
    path = environ.get("PATH_INFO") or ""
    return "/" + path.encode("latin-1").decode("utf-8", "replace").lstrip("/")


@dataclass(slots=True)
class RequestRecord:
    """What the access line and the request metrics say about one request."""

    request_id: str
    method: str
    path: str
    remote: str | None
    started: float

    @classmethod
    def begin(cls, environ: dict[str, Any], started: float | None = None) -> RequestRecord:
        """The record of the request ``environ`` describes, started at ``started`` (now)."""
        return cls(
            request_id=request_id_from(environ.get("HTTP_X_REQUEST_ID", "")),
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=request_path(environ),
            remote=environ.get("REMOTE_ADDR"),
            started=time.perf_counter() if started is None else started,
        )

    def answered(self, route: str, status: int, token: str | None) -> None:
        """Count the request with its latency and write its access line (a body sent whole)."""
        seconds = time.perf_counter() - self.started
        observe_request(self.method, route, status, seconds)
        self._log(status, token, seconds)

    def streaming(self, route: str, status: int, token: str | None) -> Callable[[], None]:
        """Count the request now (no latency: a stream lasts as long as its client reads); the
        returned function writes the access line, with the true duration, when the body ends."""
        observe_request(self.method, route, status, None)
        return lambda: self._log(status, token, time.perf_counter() - self.started)

    def _log(self, status: int, token: str | None, seconds: float) -> None:
        log_access(
            request_id=self.request_id,
            method=self.method,
            path=self.path,
            status=status,
            token=token,
            remote=self.remote,
            seconds=seconds,
        )


def init_request_logging(app: Flask) -> None:
    """Assign a request id, echo it, and account for each request when its response ends."""

    @app.before_request
    def _start() -> None:
        record = RequestRecord.begin(request.environ)
        g.request_record = record
        g.request_id = record.request_id

    @app.after_request
    def _finish(response: Response) -> Response:
        record = g.get("request_record") or RequestRecord.begin(request.environ)
        response.headers["X-Request-Id"] = record.request_id
        principal = g.get("principal")
        token = principal.name if principal else None
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        status = response.status_code
        if response.is_streamed:
            response.call_on_close(record.streaming(route, status, token))
        else:
            record.answered(route, status, token)
        return response
