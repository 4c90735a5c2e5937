"""One error model and the catalogue of every error code Berth sends.

``BerthError`` carries an HTTP status, a stable UPPER_SNAKE ``code`` and a human ``detail``; each
code has exactly one class below, which fixes its status and title, so a code always reads the
same. ``app.http.problems`` turns these (and Flask's own routing errors, through
:func:`http_error`) into RFC 9457 ``application/problem+json``, documented by
``schemas.common.ProblemSchema``. No Flask here: every room may raise these.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_MIME = "application/problem+json"
# Every 429 and 503 carries Retry-After; this is the delay unless the raiser knows a better one.
RETRY_STATUSES = (429, 503)
RETRY_AFTER_SECONDS = 5


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
        self.headers = dict(headers or {})
        if self.status in RETRY_STATUSES:  # scripts may retry: say when
            self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
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


class TooManyEventStreams(BerthError):
    status, code, title = 503, "TOO_MANY_EVENT_STREAMS", "Too many event streams"


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


# -- refinements of the classes above: same status (and title unless given), a code of their own


class EngineReportedError(EngineError):
    """An engine answer passed through as it came (Engine-API front door) that reported a
    failure inside its body: the code its audit record carries."""

    code = "ENGINE_REPORTED_ERROR"


class BadRequest(BerthError):
    status, code, title = 400, "BAD_REQUEST", "Bad Request"


class MalformedJson(ValidationFailed):
    code = "MALFORMED_JSON"


class EngineRejected(ValidationFailed):
    code = "ENGINE_REJECTED"


class InvalidRegistry(ValidationFailed):
    code = "INVALID_REGISTRY"


class InvalidRegistryAuth(ValidationFailed):
    code = "INVALID_REGISTRY_AUTH"


class InvalidContainer(InvalidReference):
    code = "INVALID_CONTAINER"


class RouteClosed(Forbidden):
    code = "ROUTE_CLOSED"


class EngineForbidden(Forbidden):
    code = "ENGINE_FORBIDDEN"


class RepositoryNotFound(NotFound):
    code = "REPOSITORY_NOT_FOUND"


class JobNotFound(NotFound):
    code = "JOB_NOT_FOUND"


class DistributionNotFound(NotFound):
    code = "DISTRIBUTION_NOT_FOUND"


class PlatformNotAvailable(NotFound):
    code, title = "PLATFORM_NOT_AVAILABLE", "No image for that platform"


class EngineApiRefused(BerthError):
    """An Engine API call Berth does not let through (containers, build, volumes, ...)."""

    status, code, title = 403, "ENGINE_API_REFUSED", "Not an image operation"


class MethodNotAllowed(BerthError):
    status, code, title = 405, "METHOD_NOT_ALLOWED", "Method Not Allowed"


class NotAcceptable(BerthError):
    status, code, title = 406, "NOT_ACCEPTABLE", "Not Acceptable"


class LengthRequired(BerthError):
    status, code, title = 411, "LENGTH_REQUIRED", "Length Required"


class ImageHasChildren(Conflict):
    code, title = "IMAGE_HAS_CHILDREN", "Image has dependent child images"


class ImageHasReferences(Conflict):
    code, title = "IMAGE_HAS_REFERENCES", "Image has several references"


class IdempotencyKeyReused(BerthError):
    status, code, title = 422, "IDEMPOTENCY_KEY_REUSED", "Idempotency key used for another request"


class IdempotencyKeyInFlight(Conflict):
    code, title = "IDEMPOTENCY_KEY_IN_FLIGHT", "Idempotency key in use by a request in progress"


class JobFinished(Conflict):
    code = "JOB_FINISHED"


class JobCancelled(Conflict):
    code, title = "JOB_CANCELLED", "Job cancelled"


class ClientClosed(BerthError):
    """Never sent (the client is gone): the code audit records give a call the client left."""

    status, code, title = 499, "CLIENT_CLOSED", "Client closed the connection"


class JobWorkerLost(BerthError):
    status, code, title = 500, "JOB_WORKER_LOST", "Job lost"


class RegistryAuthFileInvalid(BerthError):
    status, code, title = 500, "REGISTRY_AUTH_FILE_INVALID", "Registry credentials file unusable"


class ImageIdMismatch(BerthError):
    status, code, title = 502, "IMAGE_ID_MISMATCH", "Image differs from the source"


class DistributionFailed(BerthError):
    status, code, title = 502, "DISTRIBUTION_FAILED", "Distribution failed"


class DistributionPartial(DistributionFailed):
    code, title = "DISTRIBUTION_PARTIAL", "Distribution partly failed"


# Statuses Flask and werkzeug answer themselves (routing, content negotiation, size limits).
_HTTP_ERRORS: dict[int, type[BerthError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    411: LengthRequired,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def http_error(status: int, detail: str, headers: dict[str, str] | None = None) -> BerthError:
    """The catalogue's error for an HTTP status werkzeug raised; a status it does not list
    keeps the generic code ``HTTP_<status>``."""
    cls = _HTTP_ERRORS.get(status)
    if cls is not None:
        return cls(detail, headers=headers)
    return BerthError(detail, status=status, code=f"HTTP_{status}", headers=headers)
