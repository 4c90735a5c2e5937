"""The adapter to the Docker engine: the only package that imports docker-py.

``Engine`` gathers one mixin per area (images, containers, system, ...) over a single lazily
created connection; ``EnginePool`` holds one Engine per configured engine name, created once per
process and reached through ``app.extensions``.
"""

from __future__ import annotations

from typing import Any

from app.engine.base import EngineConnection
from app.engine.containers import ContainersMixin
from app.engine.images import ImagesMixin
from app.engine.pool import DEFAULT_ENGINE, EnginePool, engine_environments
from app.engine.system import SystemMixin

__all__ = ["DEFAULT_ENGINE", "Engine", "EnginePool", "pool_from_config"]


class Engine(ImagesMixin, ContainersMixin, SystemMixin):
    """One Docker engine, spoken to through docker-py's low-level API client."""

    def __init__(self, name: str, environment: dict[str, str], timeout: float) -> None:
        self.name = name
        self.connection = EngineConnection(name, environment, timeout)

    def close(self) -> None:
        self.connection.close()


def pool_from_config(config: dict[str, Any], docker_env: dict[str, str]) -> EnginePool:
    """The pool for ``BERTH_ENGINES`` (or the single ``local`` engine from DOCKER_HOST)."""
    environments = engine_environments(config.get("BERTH_ENGINES"), docker_env)
    return EnginePool(environments, config["BERTH_ENGINE_TIMEOUT"], Engine)
