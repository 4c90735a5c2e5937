"""Accessors for the per-process resources that ``create_app`` puts in ``app.extensions``."""

from __future__ import annotations

from flask import current_app

from app.engine import DEFAULT_ENGINE, Engine, EnginePool


def engine_pool() -> EnginePool:
    return current_app.extensions["berth.engines"]


def get_engine(name: str = DEFAULT_ENGINE) -> Engine:
    """The engine named ``name`` (created on first use, once per process)."""
    return engine_pool().get(name)
