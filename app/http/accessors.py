"""Accessors for the per-process resources that ``create_app`` puts in ``app.extensions``."""

from __future__ import annotations

from flask import current_app, g, has_request_context

from app.engine import Engine, EnginePool
from app.registry.policy import OutboundPolicy


def engine_pool() -> EnginePool:
    return current_app.extensions["berth.engines"]


def outbound_policy() -> OutboundPolicy:
    """The outbound policy every registry, search index and token realm passes first."""
    return current_app.extensions["berth.outbound"]


def get_engine(name: str | None = None) -> Engine:
    """The engine named ``name``, else the request's ``?engine=``, else the default one.

    Created on first use, once per process. ``@operation`` has already checked that the engine
    exists and that the caller's token may use it.
    """
    if name is None and has_request_context():
        name = g.get("engine_name")
    return engine_pool().get(name)
