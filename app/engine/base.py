"""Connection to one Docker engine and the translation of docker-py failures into BerthErrors.

The ``app.engine`` package is the only place that imports ``docker``. It hands out plain dicts and
byte generators, never docker-py objects, and never imports flask.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests.exceptions

from app.domain import times
from app.domain.tar_framing import engine_reason
from app.engine import docker_api
from app.engine.cancel import track as track_connections
from app.errors import (
    BerthError,
    Conflict,
    ContainerNotFound,
    EngineError,
    EngineRejected,
    EngineUnavailable,
    ImageNotFound,
    NotFound,
    RegistryUnreachable,
)
from app.observability.metrics import observe_engine_call

log = logging.getLogger("berth.engine")

# Metadata calls get a short timeout; streams (save, load, pull, push) get none, since a layer can
# legitimately take minutes. Both are set here, in one place (docs/operations.md, "Timeouts").
STREAM_TIMEOUT = None
MAX_POOL_SIZE = 32

_NOT_FOUND = {"image": ImageNotFound, "container": ContainerNotFound}


class EngineConnection:
    """Lazily connected docker-py low-level clients for one engine (thread-safe)."""

    def __init__(self, name: str, environment: dict[str, str], timeout: float) -> None:
        self.name = name
        self._environment = environment
        self._timeout = timeout
        self._lock = threading.Lock()
        self._api: docker.APIClient | None = None
        self._stream_api: docker.APIClient | None = None

    @property
    def unix_socket(self) -> str | None:
        """The engine's unix socket path; None when it is reached over TCP, TLS or SSH."""
        try:
            kwargs = docker.utils.kwargs_from_env(environment=self._environment)
            host = docker.utils.parse_host(kwargs.get("base_url"))
        except docker.errors.DockerException:
            return None  # docker-py reports the bad setting when the client is made
        if kwargs.get("tls"):
            return None
        return host.removeprefix("http+unix://") if host.startswith("http+unix://") else None

    def _create(self, timeout: float | None, version: str = "auto") -> docker.APIClient:
        kwargs = docker.utils.kwargs_from_env(environment=self._environment)
        try:
            client = docker.APIClient(
                version=version, timeout=timeout, max_pool_size=MAX_POOL_SIZE, **kwargs
            )
        except docker.errors.DockerException as e:
            raise EngineUnavailable(f"The Docker engine '{self.name}' does not answer.") from e
        # Never let the host user's ~/.docker/config.json credentials leak into registry calls:
        # Berth passes the credentials it was given, and only those.
        docker_api.refuse_host_credentials(client)
        docker_api.time_calls(client, observe_engine_call)
        track_connections(client)  # so that a cancelled job can close them (app.engine.cancel)
        return client

    @property
    def api(self) -> docker.APIClient:
        """The client for metadata calls (short timeout)."""
        if self._api is None:
            with self._lock:
                if self._api is None:
                    self._api = self._create(self._timeout)
        return self._api

    @property
    def stream_api(self) -> docker.APIClient:
        """The client for long streams (no read timeout)."""
        if self._stream_api is None:
            # Negotiate the API version on the metadata client, which has a timeout: a hung
            # engine then fails fast here instead of hanging the version probe forever.
            version = self.api.api_version
            with self._lock:
                if self._stream_api is None:
                    self._stream_api = self._create(STREAM_TIMEOUT, version)
        return self._stream_api

    def close(self) -> None:
        with self._lock:
            for client in (self._api, self._stream_api):
                if client is not None:
                    client.close()
            self._api = self._stream_api = None


def explanation(error: docker.errors.APIError) -> str:
    """The engine's own message for an API error, without docker-py's URL decoration and
    without the host paths it may mention (the engine's data root is no client's business)."""
    text = error.explanation
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return engine_reason(str(text or error))


@contextlib.contextmanager
def translate(kind: str = "image", target: str | None = None) -> Iterator[None]:
    """Turn docker-py and transport failures raised inside the block into BerthErrors.

    ``kind`` names what a 404 is about (``image`` or ``container``) and ``target`` the thing.
    """
    try:
        yield
    except BerthError:
        raise
    except docker.errors.NotFound as e:
        cls = _NOT_FOUND.get(kind, NotFound)
        if target:  # the engine's message only says so again (often twice): say it once
            raise cls(f"No such {kind}: {target}", **{kind: target}) from e
        raise cls(explanation(e)) from e
    except docker.errors.APIError as e:
        status = e.status_code or 500
        message = explanation(e)
        if status == 409:
            raise Conflict(message) from e
        if status == 400:
            raise EngineRejected(message) from e
        if status >= 500 and _looks_unreachable(message):
            raise RegistryUnreachable(message) from e
        raise EngineError(f"The engine answered {status}: {message}") from e
    except (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError) as e:
        raise EngineUnavailable("The Docker engine does not answer.") from e
    except requests.exceptions.Timeout as e:
        raise EngineUnavailable("The Docker engine did not answer in time.") from e
    except docker.errors.DockerException as e:
        raise EngineError(f"Docker engine error: {engine_reason(str(e))}") from e


def _looks_unreachable(message: str) -> bool:
    lowered = message.lower()
    return any(
        s in lowered
        for s in ("connection refused", "no such host", "i/o timeout", "no route to host")
    )


def rfc3339(value: Any) -> str | None:
    """Engine timestamps (unix seconds, or RFC 3339 with nanoseconds) as RFC 3339 UTC."""
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float):
        return times.rfc3339(value, "auto")
    text = str(value)
    if text.startswith("0001-01-01"):
        return None
    return text
