"""Engines by name: ``BERTH_ENGINES`` parsed into connection settings, one Engine per name.

Each engine is created on first use, once per process; a down engine only ever slows requests
addressed to it (each connection has its own lock), never requests to the others.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

DEFAULT_ENGINE = "local"
log = logging.getLogger("berth.engine")
ENGINE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class EngineSpecError(ValueError):
    """BERTH_ENGINES holds an entry Berth cannot use."""


class _Closable(Protocol):
    name: str

    def close(self) -> None: ...


def engine_environments(
    engines: Mapping[str, Any] | None, default_env: dict[str, str]
) -> dict[str, dict[str, str]]:
    """``BERTH_ENGINES`` → {name: DOCKER_* environment}; without it, one engine ``local``.

    An entry is a URL string (``unix://...``, ``tcp://host:2376``, ``ssh://user@host``) or an
    object ``{"host": URL, "tls_verify": bool, "cert_path": DIR}`` (DIR holding ca.pem, cert.pem,
    key.pem, as DOCKER_CERT_PATH does).
    """
    if not engines:
        return {DEFAULT_ENGINE: dict(default_env)}
    if not isinstance(engines, Mapping):
        raise EngineSpecError("BERTH_ENGINES must be a JSON object of name → connection")
    result: dict[str, dict[str, str]] = {}
    for name, spec in engines.items():
        if not ENGINE_NAME.match(name):
            raise EngineSpecError(
                f"BERTH_ENGINES: engine name {name!r} must be lowercase letters, digits, '.', "
                "'_' or '-' (at most 63)"
            )
        if isinstance(spec, str):
            spec = {"host": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("host"), str):
            raise EngineSpecError(f"BERTH_ENGINES: engine {name!r} needs a 'host' URL")
        unknown = set(spec) - {"host", "tls_verify", "cert_path"}
        if unknown:
            raise EngineSpecError(
                f"BERTH_ENGINES: engine {name!r} has unknown keys {sorted(unknown)}"
            )
        if not spec["host"].startswith(("unix://", "tcp://", "ssh://", "http://", "https://")):
            raise EngineSpecError(
                f"BERTH_ENGINES: engine {name!r} host must be unix://, tcp:// or ssh://"
            )
        env = {"DOCKER_HOST": spec["host"]}
        if spec.get("tls_verify"):
            env["DOCKER_TLS_VERIFY"] = "1"
        if spec.get("cert_path"):
            env["DOCKER_CERT_PATH"] = str(spec["cert_path"])
        result[name] = env
    return result


class EnginePool:
    """Engines by name, each created on first use by ``factory(name, environment, timeout)``."""

    def __init__(
        self,
        environments: dict[str, dict[str, str]],
        timeout: float,
        factory: Callable[[str, dict[str, str], float], Any],
    ) -> None:
        self._environments = environments
        self._timeout = timeout
        self._factory = factory
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._environments)

    @property
    def default(self) -> str:
        """``local`` when configured, else the first engine named in BERTH_ENGINES."""
        return DEFAULT_ENGINE if DEFAULT_ENGINE in self._environments else self.names[0]

    def __contains__(self, name: object) -> bool:
        return name in self._environments

    def get(self, name: str | None = None) -> Any:
        name = name or self.default
        engine = self._engines.get(name)
        if engine is None:
            with self._lock:  # only guards the dict; connecting happens later, per engine
                engine = self._engines.get(name)
                if engine is None:
                    engine = self._factory(name, self._environments[name], self._timeout)
                    self._engines[name] = engine
        return engine

    def follow_events(self, name: str, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Hand every event of engine ``name`` to ``listener`` too, following it from now on."""
        self.get(name).follow_events(listener)

    def warm(self, names: list[str]) -> threading.Thread:
        """Warm the image facts of engines ``names`` in a background thread (a worker's start);
        an engine that does not answer is skipped: its first view reads them then."""

        def run() -> None:
            for name in names:
                try:
                    self.get(name).warm_image_facts()
                except Exception as e:  # never fatal: a cold cache only costs time
                    log.info("image facts of engine %s not warmed: %s", name, e)

        thread = threading.Thread(target=run, name="berth-warm-facts", daemon=True)
        thread.start()
        return thread

    def existing(self, name: str) -> Any | None:
        """The engine ``name`` if this process has created it already; never creates one."""
        return self._engines.get(name)

    def close(self) -> None:
        for engine in list(self._engines.values()):
            engine.close()
