"""Every failure leaves as RFC 9457 ``application/problem+json``, carrying the request id.

:func:`register_error_handlers` routes ``BerthError`` (the catalogue in ``app.errors``), werkzeug's
own HTTP errors (routing, size limits) and anything unforeseen through :func:`problem_response`,
so there is one payload shape, documented by ``schemas.common.ProblemSchema``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException

from app.errors import PROBLEM_MIME, BerthError, Internal, http_error
from app.http.paths import allowed_methods

log = logging.getLogger("berth.errors")


def problem_response(error: BerthError) -> Response:
    """Render a BerthError as a problem+json response carrying the request id."""
    body = error.to_problem()
    request_id = g.get("request_id") if g else None
    if request_id:
        body["request_id"] = request_id
    response = Response(json.dumps(body), status=error.status, mimetype=PROBLEM_MIME)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Route BerthError, werkzeug HTTP errors and anything else through problem_response."""

    @app.errorhandler(BerthError)
    def _berth(error: BerthError) -> Response:
        if error.status >= 500:
            log.warning("request failed: %s %s", error.code, error.detail)
        return problem_response(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        detail = error.description or HTTPStatus(status).description
        headers = {}
        if status == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(allowed_methods(request.path, set(error.valid_methods)))
        return problem_response(http_error(status, detail, headers))

    @app.errorhandler(Exception)
    def _unforeseen(error: Exception) -> Response:
        # Full trace goes to the log only; the body says nothing about internals.
        log.exception("unhandled error")
        return problem_response(Internal("An unexpected error occurred; see the service log."))
