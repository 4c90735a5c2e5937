"""Refusals in the engine's own error shape, ``{"message": "..."}``, which Docker's clients print.

The docker CLI shows an engine error as ``Error response from daemon: <message>``, so every
failure under ``/engines/<engine>/`` (Berth's checks, a refused call, an unreachable engine) is
worded for that reader and leaves an audit record when it refuses something.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from app.errors import BerthError, Unauthorized
from app.errors import EngineApiRefused as RefusedCall  # declared in the catalogue
from app.http.auditing import begin_audit, finish_audit, note_audit_engines

log = logging.getLogger("berth.engine_api")
_VERSION = re.compile(r"^v1\.[0-9]{1,3}$")

IMAGES_ONLY = (
    "Berth allows image operations only: {what} is not one of them (images, pull, push, save, "
    "load, tag, commit, export, import, search, login and system df are)."
)
NO_TOKEN = (
    'Berth needs a token: add {"HttpHeaders": {"Authorization": "Bearer <token>"}} to the '
    "config.json in your DOCKER_CONFIG directory (~/.docker by default), or give docker-py the "
    "same header."
)
BAD_TOKEN = "Berth does not know this token: check the Authorization header in config.json."


def refused(what: str) -> RefusedCall:
    return RefusedCall(IMAGES_ONLY.format(what=what))


def engine_message(error: BerthError) -> str:
    """What the client prints for ``error``."""
    if isinstance(error, Unauthorized):
        return NO_TOKEN if error.detail.startswith("Send ") else BAD_TOKEN
    if error.code == "FORBIDDEN" and error.extra.get("required_scope"):
        scope = error.extra["required_scope"]
        return f"Berth: this token lacks the '{scope}' scope that {_call()} needs."
    if error.code == "ENGINE_FORBIDDEN":
        return f"Berth: this token may not use the engine '{g.get('engine_name')}'."
    return f"Berth: {error.detail}" if not isinstance(error, RefusedCall) else error.detail


def _call() -> str:
    """``DELETE images/x:1``: the call as the Engine API names it, without Berth's prefix."""
    parts = request.path.split("/")[3:]  # "", "engines", "<engine>", ...
    if parts and _VERSION.match(parts[0]):
        parts = parts[1:]
    return f"{request.method} {'/'.join(parts)}"


def message_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"message": message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _audit_refusal(status: int, code: str) -> None:
    """One record for a call refused or failed before (or without) its own record."""
    if g.get("audit_opened") and g.get("audit") is None:
        return  # its record is written already
    if g.get("audit") is None:
        begin_audit("engine_api", {"ref": g.get("engine_target")})
    if g.get("engine_name"):
        note_audit_engines([g.engine_name])
    finish_audit(status, code=code)


def register(bp: Blueprint) -> None:
    """Answer every failure of ``bp``'s routes (and of the checks before them) as the engine."""

    @bp.errorhandler(BerthError)
    def _berth(error: BerthError) -> Response:
        if error.status in (401, 403) or g.get("audit") is not None:
            _audit_refusal(error.status, error.code)
        return message_response(error.status, engine_message(error), error.headers)

    @bp.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if g.get("audit") is not None:
            _audit_refusal(status, "HTTP_" + str(status))
        return message_response(status, f"Berth: {error.description}")

    @bp.errorhandler(Exception)
    def _unforeseen(error: Exception) -> Response:
        log.exception("engine API call failed")
        if g.get("audit") is not None:
            _audit_refusal(500, "INTERNAL")
        return message_response(500, "Berth: the call failed unexpectedly.")
