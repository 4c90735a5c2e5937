"""The adapter to the Docker engine: the only package that imports docker-py.

``Engine`` gathers one mixin per area (images, containers, system, ...) over a single lazily
created connection; ``EnginePool`` holds one Engine per configured engine name, created once per
process and reached through ``app.extensions``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.engine.archives import ArchivesMixin
from app.engine.base import EngineConnection
from app.engine.cache import MetadataCache
from app.engine.containers import ContainersMixin
from app.engine.events import EventWatcher
from app.engine.images import ImagesMixin
from app.engine.lifecycle import LifecycleMixin
from app.engine.passthrough import PassthroughMixin
from app.engine.pool import DEFAULT_ENGINE, EnginePool, engine_environments
from app.engine.push import PushMixin
from app.engine.removal import RemovalMixin
from app.engine.system import SystemMixin
from app.engine.usage import UsageMixin

__all__ = ["DEFAULT_ENGINE", "Engine", "EnginePool", "pool_from_config"]


class Engine(
    ImagesMixin,
    ContainersMixin,
    SystemMixin,
    PushMixin,
    ArchivesMixin,
    LifecycleMixin,
    RemovalMixin,
    UsageMixin,
    PassthroughMixin,
):
    """One Docker engine, spoken to through docker-py's low-level API client."""

    def __init__(self, name: str, environment: dict[str, str], timeout: float) -> None:
        self.name = name
        self.connection = EngineConnection(name, environment, timeout)
        # Metadata answers, kept exact by a watcher of this engine's events (started lazily).
        self.cache = MetadataCache()
        self.events = EventWatcher(self.connection, self.cache)

    def follow_events(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Hand this engine's events to ``listener`` too, starting its watcher if not yet done."""
        self.events.add_listener(listener)
        self.events.ensure_started()

    def close(self) -> None:
        self.events.stop()
        self.connection.close()


def pool_from_config(config: dict[str, Any], docker_env: dict[str, str]) -> EnginePool:
    """The pool for ``BERTH_ENGINES`` (or the single ``local`` engine from DOCKER_HOST)."""
    environments = engine_environments(config.get("BERTH_ENGINES"), docker_env)
    return EnginePool(environments, config["BERTH_ENGINE_TIMEOUT"], Engine)
