"""The adapter to the Docker engine: the only package that imports docker-py.

``Engine`` gathers one mixin per area (images, containers, system, ...) over a single lazily
created connection; ``EnginePool`` holds one Engine per configured engine name, created once per
process and reached through ``app.extensions``.
"""

from __future__ import annotations

import threading
from typing import Any

from app.engine.base import EngineConnection
from app.engine.containers import ContainersMixin
from app.engine.images import ImagesMixin
from app.engine.system import SystemMixin

DEFAULT_ENGINE = "local"


class Engine(ImagesMixin, ContainersMixin, SystemMixin):
    """One Docker engine, spoken to through docker-py's low-level API client."""

    def __init__(self, name: str, environment: dict[str, str], timeout: float) -> None:
        self.name = name
        self.connection = EngineConnection(name, environment, timeout)

    def close(self) -> None:
        self.connection.close()


class EnginePool:
    """Engines by name, each created on first use."""

    def __init__(self, engines: dict[str, dict[str, str]], timeout: float) -> None:
        self._specs = engines
        self._timeout = timeout
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str = DEFAULT_ENGINE) -> Engine:
        engine = self._engines.get(name)
        if engine is None:
            with self._lock:
                engine = self._engines.get(name)
                if engine is None:
                    engine = Engine(name, self._specs[name], self._timeout)
                    self._engines[name] = engine
        return engine

    def close(self) -> None:
        for engine in list(self._engines.values()):
            engine.close()


def pool_from_config(config: dict[str, Any], docker_env: dict[str, str]) -> EnginePool:
    return EnginePool({DEFAULT_ENGINE: docker_env}, config["BERTH_ENGINE_TIMEOUT"])
