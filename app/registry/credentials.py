"""Registry credentials: the per-request ``X-Registry-Auth`` header, else the server's store.

The store is ``BERTH_REGISTRY_AUTH_FILE``, a file in the ``auths`` format of the Docker CLI's
``config.json``, so an existing one can be reused::

    {"auths": {"registry.example.com:5000": {"auth": "base64(user:password)"},
               "https://index.docker.io/v1/": {"username": "me", "password": "..."},
               "harbor.example.com": {"identitytoken": "..."}}}

Keys are registry hosts (a scheme and path, as the CLI writes for Docker Hub, are ignored).
The file is re-read when it changes, so credentials can be rotated without a restart.
``credsStore``/``credHelpers`` (external helper programs) are not run.

:func:`resolve_auth` is the one place pull, push and the registry endpoints get credentials:
the request's header wins over the store, always. Secrets never appear in errors or logs.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.domain.registry_auth import parse_registry_auth_header
from app.errors import RegistryAuthFileInvalid
from app.registry.addresses import DOCKER_HUB, is_docker_hub

log = logging.getLogger("berth.credentials")


def registry_key(text: str) -> str:
    """A config.json ``auths`` key or a registry name as the host it names (Hub: docker.io)."""
    text = text.strip()
    if "://" in text:
        text = urlsplit(text).netloc or text
    text = text.split("/", 1)[0].lower()
    return DOCKER_HUB if is_docker_hub(text) else text


def parse_auths(data: Any) -> dict[str, dict[str, str]]:
    """The ``auths`` section of a config.json document as {registry host: credentials}.

    Raises ValueError naming the entry (never its secret) when an entry cannot be used.
    """
    if not isinstance(data, dict):
        raise ValueError("the file must hold a JSON object with an 'auths' object")
    auths = data.get("auths", {})
    if not isinstance(auths, dict):
        raise ValueError("'auths' must be an object keyed by registry host")
    result: dict[str, dict[str, str]] = {}
    for key, entry in auths.items():
        host = registry_key(str(key))
        if not isinstance(entry, dict):
            raise ValueError(f"the entry for {host} must be an object")
        credentials: dict[str, str] = {}
        for name in ("username", "password", "identitytoken", "registrytoken"):
            value = entry.get(name)
            if value not in (None, ""):
                if not isinstance(value, str):
                    raise ValueError(f"'{name}' of the entry for {host} must be a string")
                credentials[name] = value
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise ValueError(f"'auth' of the entry for {host} is not base64") from None
            user, sep, password = decoded.partition(":")
            if not sep:
                raise ValueError(f"'auth' of the entry for {host} is not 'username:password'")
            credentials.setdefault("username", user)
            credentials.setdefault("password", password)
        if not credentials:
            continue  # an empty entry (the CLI writes these with credsStore): nothing stored
        credentials["serveraddress"] = host
        result[host] = credentials
    return result


class CredentialStore:
    """The credentials of ``BERTH_REGISTRY_AUTH_FILE``, re-read whenever the file changes."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, dict[str, str]] = {}
        self._warned_mode = False

    def _load(self) -> dict[str, dict[str, str]]:
        assert self.path is not None
        try:
            info = self.path.stat()
        except OSError as e:
            raise self._error(f"cannot read it ({e.strerror})") from None
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            if stamp == self._stamp:
                return self._entries
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not self._warned_mode:
                log.warning("BERTH_REGISTRY_AUTH_FILE is readable by other users; chmod 600 it")
                self._warned_mode = True
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except OSError as e:
                raise self._error(f"cannot read it ({e.strerror})") from None
            except ValueError:
                raise self._error("it is not valid JSON") from None
            try:
                entries = parse_auths(data)
            except ValueError as e:
                raise self._error(str(e)) from None
            if isinstance(data, dict) and (data.get("credsStore") or data.get("credHelpers")):
                log.info("BERTH_REGISTRY_AUTH_FILE names credential helpers; Berth runs none")
            self._entries, self._stamp = entries, stamp
            return entries

    def _error(self, reason: str) -> RegistryAuthFileInvalid:
        log.error("BERTH_REGISTRY_AUTH_FILE is unusable: %s", reason)
        return RegistryAuthFileInvalid(
            f"The server's registry credentials file (BERTH_REGISTRY_AUTH_FILE) is unusable: "
            f"{reason}."
        )

    def lookup(self, registry: str) -> dict[str, str] | None:
        """Stored credentials for ``registry`` (a host[:port]), or None."""
        if self.path is None:
            return None
        entry = self._load().get(registry_key(registry))
        return dict(entry) if entry else None

    def registries(self) -> list[str]:
        """The registry hosts credentials are stored for."""
        return sorted(self._load()) if self.path is not None else []


def resolve_auth(
    registry_host: str, header_value: str | None, store: CredentialStore
) -> dict[str, str] | None:
    """The credentials to use with ``registry_host``: the request's ``X-Registry-Auth`` value
    when it carries any, else those ``store`` (``BERTH_REGISTRY_AUTH_FILE``) holds, else None
    (anonymous). Raises ValidationFailed (INVALID_REGISTRY_AUTH) for a malformed header.
    """
    given = parse_registry_auth_header(header_value)
    if given:
        return given
    return store.lookup(registry_host)
