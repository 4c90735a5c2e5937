"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint

from app.errors import BerthError, EngineUnavailable
from app.http.accessors import get_engine, services
from app.http.operation import operation
from app.http.schemas import system as schemas

bp = Blueprint("health", __name__)


@bp.get("/health")
@operation(tags=["system"], response=schemas.health, engine=False)
def health():
    """Liveness: the process serves (the engine is not asked)."""
    return {"status": "ok"}


@bp.get("/ready")
@operation(tags=["system"], response=schemas.ready, engine=False)
def ready():
    """Readiness: the default engine answers.

    Public, so it names no engine and no version (per-engine reachability and versions are in
    `GET /v1/engines`, for a token); it takes no `?engine=`. 503 ENGINE_UNAVAILABLE when the
    default engine does not answer.
    """
    try:
        get_engine(services().engines.default).version()
    except BerthError:  # its detail may name the engine: not for anonymous callers
        raise EngineUnavailable("The default Docker engine does not answer.") from None
    return {"status": "ready"}
