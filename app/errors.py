"""One error model: every failure leaves Berth as RFC 9457 ``application/problem+json``.

``BerthError`` carries an HTTP status, a stable UPPER_SNAKE ``code`` and a human ``detail``.
Handlers registered by :func:`register_error_handlers` turn it (and Flask's own routing errors,
and anything unforeseen) into one payload shape, documented by ``schemas.common.ProblemSchema``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException

PROBLEM_MIME = "application/problem+json"
log = logging.getLogger("berth.errors")


class BerthError(Exception):
    """A failure with a documented status and code. Subclasses fix status and code."""

    status: int = 500
    code: str = "INTERNAL"
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        errors: dict | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or "")
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        self.detail = detail or HTTPStatus(self.status).description
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """The problem document, without the request id (added at response time)."""
        body: dict[str, Any] = {
            "type": problem_type(self.code),
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_type(code: str) -> str:
    """A stable URI per code; relative, as RFC 9457 allows."""
    return "/problems/" + code.lower().replace("_", "-")


class ValidationFailed(BerthError):
    status, code, title = 400, "VALIDATION_FAILED", "Request validation failed"


class InvalidReference(BerthError):
    status, code, title = 400, "INVALID_REFERENCE", "Invalid image reference"


class Unauthorized(BerthError):
    status, code, title = 401, "UNAUTHORIZED", "Authentication required"


class Forbidden(BerthError):
    status, code, title = 403, "FORBIDDEN", "Missing scope"


class NotFound(BerthError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class ImageNotFound(NotFound):
    code, title = "IMAGE_NOT_FOUND", "Image not found"


class ContainerNotFound(NotFound):
    code, title = "CONTAINER_NOT_FOUND", "Container not found"


class EngineNotFound(NotFound):
    code, title = "ENGINE_NOT_FOUND", "Engine not found"


class Conflict(BerthError):
    status, code, title = 409, "CONFLICT", "Conflict"


class ImageInUse(Conflict):
    code, title = "IMAGE_IN_USE", "Image in use"


class PayloadTooLarge(BerthError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "Payload too large"


class BodyStalled(BerthError):
    status, code, title = 408, "REQUEST_TIMEOUT", "Request body stalled"


class UnsupportedMediaType(BerthError):
    status, code, title = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"


class TooManyJobs(BerthError):
    status, code, title = 429, "TOO_MANY_JOBS", "Too many jobs"


class EngineError(BerthError):
    status, code, title = 502, "ENGINE_ERROR", "Docker engine error"


class EngineUnavailable(BerthError):
    status, code, title = 503, "ENGINE_UNAVAILABLE", "Docker engine unavailable"


class TooManyTransfers(BerthError):
    status, code, title = 503, "TOO_MANY_TRANSFERS", "Too many archive transfers"


class ManifestUnknown(NotFound):
    code, title = "MANIFEST_UNKNOWN", "Manifest unknown"


class RegistryAuthFailed(BerthError):
    status, code, title = 403, "REGISTRY_AUTH_FAILED", "Registry refused the credentials"


class RegistryNotAllowed(BerthError):
    status, code, title = 403, "REGISTRY_NOT_ALLOWED", "Registry not allowed"


class RegistryUnreachable(BerthError):
    status, code, title = 502, "REGISTRY_UNREACHABLE", "Registry unreachable"


class RegistryError(BerthError):
    status, code, title = 502, "REGISTRY_ERROR", "Registry error"


class InvalidArchive(BerthError):
    status, code, title = 400, "INVALID_ARCHIVE", "Invalid image archive"


class Internal(BerthError):
    status, code, title = 500, "INTERNAL", "Internal error"


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


_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


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
        code = _HTTP_CODES.get(status, f"HTTP_{status}")
        detail = error.description or HTTPStatus(status).description
        headers = {}
        if status == 405 and getattr(error, "valid_methods", None):
            from app.http.paths import allowed_methods  # routing knowledge lives with the API

            headers["Allow"] = ", ".join(allowed_methods(request.path, set(error.valid_methods)))
        return problem_response(BerthError(detail, status=status, code=code, headers=headers))

    @app.errorhandler(Exception)
    def _unforeseen(error: Exception) -> Response:
        # Full trace goes to the log only; the body says nothing about internals.
        log.exception("unhandled error")
        return problem_response(Internal("An unexpected error occurred; see the service log."))
