"""Answering long engine operations: one JSON result, or an NDJSON progress stream.

With ``Accept: application/x-ndjson`` the client gets one normalised progress object per line and
exactly one final line, ``{"result": {...}}`` or ``{"error": {problem}}``. Otherwise Berth reads the
whole engine stream itself and answers with a real status: never a 200 for a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, g, request, stream_with_context
from marshmallow import Schema

from app.domain.ndjson import json_line
from app.domain.progress import Progress, consume
from app.errors import BerthError, ClientClosed, Internal
from app.http.auditing import finish_audit

NDJSON_MIME = "application/x-ndjson"

NDJSON_DOC = {
    "schema": {
        "type": "string",
        "description": "One JSON object per line: progress lines "
        '`{"status", "layer", "current", "total"}`, then exactly one final line, '
        '`{"result": {...}}` on success or `{"error": {problem}}` on failure.',
    }
}


def wants_ndjson() -> bool:
    return request.accept_mimetypes.best_match(["application/json", NDJSON_MIME]) == NDJSON_MIME


def _problem(error: BerthError) -> dict[str, Any]:
    body = error.to_problem()
    if g.get("request_id"):
        body["request_id"] = g.request_id
    return body


def _close(events: Iterable[dict[str, Any]]) -> None:
    """Close an engine stream read only in part (it may hold a connection, or local names)."""
    close = getattr(events, "close", None)
    if callable(close):
        close()


def run_progress(
    events: Iterable[dict[str, Any]],
    finish: Callable[[Progress], Any],
    schema: Schema,
    progress: Progress | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Any:
    """Drive ``events``; ``finish(progress)`` checks the outcome and returns the result data.

    ``finish`` must raise a BerthError when the operation did not really succeed.
    """
    progress = progress or Progress()
    if not wants_ndjson():
        try:
            for _ in consume(events, progress):
                pass
        finally:
            _close(events)
        progress.raise_for_error()
        result = finish(progress)
        return (result, status, headers or {})

    def generate():
        try:
            for line in consume(events, progress):
                yield json_line(line)
            progress.raise_for_error()
            result = schema.dump(finish(progress))
            finish_audit(status, payload=result)
            yield json_line({"result": result})
        except BerthError as e:
            finish_audit(e.status, code=e.code)
            yield json_line({"error": _problem(e)})
        except Exception:  # the stream has begun: the failure must still end it as a failure
            logging.getLogger("berth.streams").exception("stream failed")
            finish_audit(500, code=Internal.code)
            yield json_line({"error": _problem(Internal("The operation failed unexpectedly."))})
        finally:
            _close(events)
            # A no-op unless the client hung up first (the record is then still open).
            finish_audit(ClientClosed.status, code=ClientClosed.code)

    response = Response(stream_with_context(generate()), status=status, mimetype=NDJSON_MIME)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["X-Accel-Buffering"] = "no"
    return response
