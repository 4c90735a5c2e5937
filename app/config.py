"""Configuration, read only from the environment (every variable: docs/configuration.md).

``load_config(environ)`` returns a plain dict that ``create_app`` puts into ``app.config``;
tests pass their own dict instead of touching ``os.environ``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    """A configuration variable holds a value Berth cannot use."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _json(name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"{name} is not valid JSON: {e.msg} at position {e.pos}") from None


_ORIGIN = re.compile(
    r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$"
)  # exact origins only: no path, no wildcard, no trailing slash


def _list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


DEFAULTS: dict[str, Any] = {
    "DOCKER_HOST": None,  # None: docker's own default (the local socket) or DOCKER_* variables
    "DOCKER_TLS_VERIFY": None,
    "DOCKER_CERT_PATH": None,
    "BERTH_TOKENS": None,
    "BERTH_TOKENS_FILE": None,
    "BERTH_AUTH": "enabled",
    "BERTH_DATA_DIR": "var",
    "BERTH_LOG_LEVEL": "INFO",
    "BERTH_ENGINE_TIMEOUT": 30.0,
    "BERTH_MAX_JSON_BYTES": 1024 * 1024,
    "BERTH_MAX_UPLOAD_BYTES": None,
    "BERTH_REGISTRY_AUTH_FILE": None,
    "BERTH_INSECURE_REGISTRIES": [],
    "BERTH_ALLOWED_REGISTRIES": [],
    "BERTH_ALLOW_PUBLIC_REGISTRIES": True,
    "BERTH_REGISTRY_TIMEOUT": 30.0,
    "BERTH_JOB_RETENTION_SECONDS": 7 * 24 * 3600,
    "BERTH_AUDIT_MAX_BYTES": 16 * 1024 * 1024,  # 0: never rotate
    "BERTH_AUDIT_BACKUPS": 5,
    "BERTH_JOB_CONCURRENCY": 4,
    "BERTH_MAX_QUEUED_JOBS": 32,  # per worker process, waiting for one of its job slots
    "BERTH_DISTRIBUTION_PARALLELISM": 4,
    "BERTH_ENGINES": None,
    "BERTH_METRICS_PUBLIC": False,
    "BERTH_THREADS": 8,  # per worker, for short requests (app.server.worker)
    "BERTH_MAX_TRANSFERS": 8,
    "BERTH_MAX_EVENT_STREAMS": 4,  # per worker: each open GET /v1/events holds one thread
    "BERTH_CORS_ORIGINS": [],  # exact origins (scheme://host[:port]) browsers may call from
    "BERTH_HEADER_TIMEOUT": 5.0,
    "BERTH_BODY_TIMEOUT": 30.0,
}

_PARSERS = {
    "BERTH_TOKENS": lambda n, v: _json(n, v),
    "BERTH_ENGINES": lambda n, v: _json(n, v),
    "BERTH_METRICS_PUBLIC": lambda n, v: _bool(n, v),
    "BERTH_THREADS": lambda n, v: _int(n, v, 1),
    "BERTH_MAX_TRANSFERS": lambda n, v: _int(n, v, 1),
    "BERTH_MAX_EVENT_STREAMS": lambda n, v: _int(n, v, 0),
    "BERTH_CORS_ORIGINS": lambda n, v: _list(v),
    "BERTH_HEADER_TIMEOUT": _float,
    "BERTH_BODY_TIMEOUT": _float,
    "BERTH_ENGINE_TIMEOUT": _float,
    "BERTH_REGISTRY_TIMEOUT": _float,
    "BERTH_MAX_JSON_BYTES": lambda n, v: _int(n, v, 1),
    "BERTH_MAX_UPLOAD_BYTES": lambda n, v: _int(n, v, 1) if v.strip() else None,
    "BERTH_INSECURE_REGISTRIES": lambda n, v: _list(v),
    "BERTH_ALLOWED_REGISTRIES": lambda n, v: _list(v),
    "BERTH_ALLOW_PUBLIC_REGISTRIES": lambda n, v: _bool(n, v),
    "BERTH_JOB_RETENTION_SECONDS": lambda n, v: _int(n, v, 60),
    "BERTH_AUDIT_MAX_BYTES": lambda n, v: _int(n, v, 0),
    "BERTH_AUDIT_BACKUPS": lambda n, v: _int(n, v, 1),
    "BERTH_JOB_CONCURRENCY": lambda n, v: _int(n, v, 1),
    "BERTH_MAX_QUEUED_JOBS": lambda n, v: _int(n, v, 0),
    "BERTH_DISTRIBUTION_PARALLELISM": lambda n, v: _int(n, v, 1),
}


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every known variable from ``environ`` (default ``os.environ``), typed, with defaults."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for name in DEFAULTS:
        raw = environ.get(name)
        if raw is None:
            continue
        parser = _PARSERS.get(name)
        config[name] = parser(name, raw) if parser else raw
    validate_config(config)
    return config


def validate_config(config: Mapping[str, Any]) -> None:
    """Fail early, with the variable's name, on values that cannot work."""
    if config["BERTH_AUTH"] not in ("enabled", "disabled"):
        raise ConfigError("BERTH_AUTH must be 'enabled' or 'disabled'")
    if str(config["BERTH_LOG_LEVEL"]).upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("BERTH_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    for origin in config.get("BERTH_CORS_ORIGINS") or []:
        if not _ORIGIN.match(str(origin)):
            raise ConfigError(
                f"BERTH_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
            )


def docker_environment(config: Mapping[str, Any]) -> dict[str, str]:
    """The DOCKER_* variables docker-py's ``kwargs_from_env`` reads, as configured."""
    env = {}
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        if config.get(name):
            env[name] = str(config[name])
    return env
