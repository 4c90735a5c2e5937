"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint

from app.api.operation import operation
from app.auth import PUBLIC
from app.extensions import get_engine
from app.schemas import system as schemas

bp = Blueprint("health", __name__)


@bp.get("/health")
@operation(scope=PUBLIC, tags=["system"], response=schemas.health, engine=False)
def health():
    """Liveness: the process serves (the engine is not asked)."""
    return {"status": "ok"}


@bp.get("/ready")
@operation(scope=PUBLIC, tags=["system"], response=schemas.ready)
def ready():
    """Readiness: the engine answers; its version and API version.

    503 ENGINE_UNAVAILABLE when the engine does not answer.
    """
    engine = get_engine()
    version = engine.version()
    return {
        "status": "ready",
        "engine": engine.name,
        "version": version["version"],
        "api_version": version["api_version"],
    }
