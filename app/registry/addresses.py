"""Registry addresses: ``host[:port]`` validation, Docker Hub's names, plain HTTP or HTTPS.

``{registry}`` values from users are validated as ``host[:port]`` (never a URL, a path or
userinfo) before any connection is made. Plain HTTP is used only for loopback hosts and hosts
listed in ``BERTH_INSECURE_REGISTRIES``; everything else is HTTPS. Plain logic, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from app.errors import InvalidRegistry

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_PORT = re.compile(
    rf"^(?:(?P<name>{_LABEL}(?:\.{_LABEL})*)|\[(?P<v6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{{1,5}}))?$"
)


def validate_registry(text: str) -> str:
    """``host[:port]`` normalised (host lowercased); anything else is a 400 INVALID_REGISTRY."""
    if not isinstance(text, str) or not text or len(text) > 261:
        raise _invalid_registry(text)
    match = _HOST_PORT.match(text)
    if not match:
        raise _invalid_registry(text)
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise _invalid_registry(text)
    if match.group("v6") is not None:
        try:
            host = f"[{ipaddress.IPv6Address(match.group('v6')).compressed}]"
        except ValueError:
            raise _invalid_registry(text) from None
    else:
        host = match.group("name").lower()
    return f"{host}:{port}" if port else host


def _invalid_registry(text: Any) -> InvalidRegistry:
    shown = text if isinstance(text, str) and len(text) <= 100 else "(value)"
    return InvalidRegistry(
        f"'{shown}' is not a registry address: give host or host:port "
        "(no scheme, path or user name), e.g. 'registry.example.com:5000'."
    )


def split_host_port(registry: str) -> tuple[str, int | None]:
    """``host[:port]`` → (host without brackets, port or None)."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    host, sep, port = registry.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return registry, None


def is_docker_hub(registry: str) -> bool:
    return registry in _HUB_ALIASES


def is_loopback(host: str) -> bool:
    """``localhost`` or a literal loopback address (names are never resolved for this)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allows_plain_http(registry: str, insecure: Iterable[str]) -> bool:
    """True for loopback hosts and entries of BERTH_INSECURE_REGISTRIES.

    An entry is ``host``, ``host:port`` or a CIDR range (``10.0.0.0/8``) matched against literal
    IP addresses, as the engine's ``insecure-registries`` setting reads them.
    """
    host, _ = split_host_port(registry)
    return is_loopback(host) or listed_insecure(registry, insecure)


def listed_insecure(registry: str, insecure: Iterable[str]) -> bool:
    """True when BERTH_INSECURE_REGISTRIES lists ``registry`` (loopback is not implied)."""
    host, _ = split_host_port(registry)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in insecure:
        entry = raw.strip().lower()
        if not entry:
            continue
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address is not None and address in network:
                return True
        elif entry in (registry, host):
            return True
    return False


def registry_scheme(registry: str, insecure: Iterable[str]) -> str:
    """``http`` only where plain HTTP is allowed, else ``https``."""
    return "http" if allows_plain_http(registry, insecure) else "https"


def api_host(registry: str) -> str:
    """The host that serves the v2 API for ``registry`` (Docker Hub's differs from its name)."""
    return DOCKER_HUB_API if is_docker_hub(registry) else registry
