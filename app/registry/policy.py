"""The outbound policy: which registries Berth, or the engine on a caller's behalf, may contact.

Every host a caller can name (``{registry}`` of ``/v1/registries``, the index of a search term,
pull, push and distribution references) and every token realm a registry points at passes
:meth:`OutboundPolicy.check` before any connection is made.

``BERTH_ALLOWED_REGISTRIES`` lists what is allowed besides public addresses: ``host`` (any port),
``host:port``, ``*.domain`` (any name under it, optionally ``*.domain:port``) and CIDR ranges
(``10.0.0.0/8``, ``fd00::/8``). A name that is not listed is resolved and allowed only when
*every* address it resolves to is listed or public (and ``BERTH_ALLOW_PUBLIC_REGISTRIES`` is
true): loopback, private, shared, link-local (so cloud metadata), unique-local, multicast,
reserved and unspecified addresses, also inside IPv4-mapped or 6to4 IPv6 addresses, are refused.
Docker Hub (``docker.io`` and its aliases) is the engine's default registry: it counts as public
without a DNS look-up, and in strict mode it must be listed (``docker.io`` lists every alias).

The decision itself (:func:`allowed`) is pure; only :class:`OutboundPolicy` resolves names.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from app.config import ConfigError
from app.errors import RegistryNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Docker Hub's names and its token service.
DOCKER_HUB_NAMES = frozenset(
    {
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "registry.hub.docker.com",
        "auth.docker.io",
    }
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
RESOLVE_TIMEOUT = 5.0
RESOLVE_WORKERS = 4


@dataclass(frozen=True)
class Rules:
    """What ``BERTH_ALLOWED_REGISTRIES`` lists, parsed; ``public``: any public address too."""

    hosts: frozenset[str] = frozenset()  # any port
    host_ports: frozenset[tuple[str, int]] = frozenset()
    globs: tuple[tuple[str, int | None], ...] = ()  # (".domain", port or None)
    networks: tuple[IPNetwork, ...] = ()
    public: bool = True


def _split(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (host, port)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(entry)
        port = rest[1:] if rest else None
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(entry)
    return _normal_host(host), int(port) if port is not None else None


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_rules(entries: Iterable[str], public: bool = True) -> Rules:
    """Parse ``BERTH_ALLOWED_REGISTRIES`` entries; a ConfigError names a bad one."""
    hosts: set[str] = set()
    host_ports: set[tuple[str, int]] = set()
    globs: list[tuple[str, int | None]] = []
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            host, port = _split(entry)
            if not _HOST.match(host.removeprefix("*.")) and not _is_ip(host):
                raise ValueError(entry)
            if host.startswith("*."):
                globs.append((host[1:], port))
            elif port is None:
                hosts.add(host)
            else:
                host_ports.add((host, port))
        except ValueError:
            raise ConfigError(
                f"BERTH_ALLOWED_REGISTRIES: {raw.strip()[:100]!r} is not host, host:port, "
                "*.domain or a CIDR range"
            ) from None
    return Rules(frozenset(hosts), frozenset(host_ports), tuple(globs), tuple(networks), public)


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (IPv4 inside IPv6 is judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def listed_by_name(host: str, port: int | None, rules: Rules) -> bool:
    """Whether ``host[:port]`` is listed by name (``host``, ``host:port`` or a glob)."""
    host = _normal_host(host)
    if host in rules.hosts or (port is not None and (host, port) in rules.host_ports):
        return True
    for suffix, glob_port in rules.globs:
        if host.endswith(suffix) and len(host) > len(suffix):
            if glob_port is None or glob_port == port:
                return True
    return False


def allowed(host: str, port: int | None, addresses: Sequence[Any], rules: Rules) -> bool:
    """The decision: may Berth contact ``host[:port]``, which resolves to ``addresses``?

    Listed by name: yes, whatever it resolves to. Otherwise every address must be in a listed
    range, or public when public registries are allowed; no address at all means no.
    """
    if listed_by_name(host, port, rules):
        return True
    if not addresses:
        return False
    for raw in addresses:
        address = raw if not isinstance(raw, str) else ipaddress.ip_address(raw.split("%")[0])
        if any(address in network for network in rules.networks):
            continue
        mapped = getattr(address, "ipv4_mapped", None)
        if mapped is not None and any(mapped in network for network in rules.networks):
            continue
        if rules.public and is_public(address):
            continue
        return False
    return True


def docker_hub_allowed(rules: Rules) -> bool:
    """Docker Hub counts as public; in strict mode one of its names must be listed."""
    return rules.public or any(listed_by_name(name, None, rules) for name in DOCKER_HUB_NAMES)


def search_index(term: str) -> str | None:
    """The index host a search term makes the engine ask, as the engine splits it; None: Hub.

    ``host[:port]/rest`` names an index when its first part has a ``.`` or ``:`` or is
    ``localhost`` (the engine's own rule).
    """
    first, sep, _ = term.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        return None
    return first


def _getaddrinfo(host: str, port: int | None) -> list[str]:
    infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


class OutboundPolicy:
    """The policy built once from the configuration; ``check`` raises RegistryNotAllowed."""

    def __init__(
        self,
        rules: Rules,
        *,
        resolve: Callable[[str, int | None], list[str]] = _getaddrinfo,
        resolve_timeout: float = RESOLVE_TIMEOUT,
    ) -> None:
        self.rules = rules
        self._resolve = resolve
        self._resolve_timeout = resolve_timeout
        self._resolver = ThreadPoolExecutor(RESOLVE_WORKERS, thread_name_prefix="berth-resolve")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OutboundPolicy:
        entries = config.get("BERTH_ALLOWED_REGISTRIES") or []
        if isinstance(entries, str):
            entries = entries.split(",")
        public = config.get("BERTH_ALLOW_PUBLIC_REGISTRIES", True)
        return cls(parse_rules(entries, bool(public)))

    def permits(self, host: str, port: int | None = None) -> bool:
        """The decision for ``host`` (a name or an IP literal, without brackets) and ``port``."""
        host = _normal_host(host)
        if host in DOCKER_HUB_NAMES:
            return docker_hub_allowed(self.rules)
        if listed_by_name(host, port, self.rules):
            return True
        try:
            addresses: list[Any] = [ipaddress.ip_address(host)]
        except ValueError:
            if not self.rules.public and not self.rules.networks:
                return False  # strict and no ranges: no address could pass, so no look-up
            addresses = self._addresses(host, port)
        return allowed(host, port, addresses, self.rules)

    def _addresses(self, host: str, port: int | None) -> list[Any]:
        """What ``host`` resolves to now; nothing when it does not resolve in time."""
        future = self._resolver.submit(self._resolve, host, port)
        try:
            return list(future.result(timeout=self._resolve_timeout))
        except (FutureTimeout, OSError, UnicodeError, ValueError):
            future.cancel()
            return []

    def check(self, registry: str, *, realm_of: str | None = None) -> None:
        """Raise RegistryNotAllowed unless ``registry`` (``host[:port]``) may be contacted.

        ``realm_of`` names the registry whose token realm ``registry`` is. The answer never
        depends on what listens there, and its detail never shows resolved addresses.
        """
        host, port = _split(registry)
        if self.permits(host, port):
            return
        if realm_of is not None:
            raise RegistryNotAllowed(
                f"Registry {realm_of} sends clients for tokens to {registry}, which Berth may "
                "not contact: add it to BERTH_ALLOWED_REGISTRIES to allow it."
            )
        which = "public registries and those" if self.rules.public else "only the registries"
        raise RegistryNotAllowed(
            f"Registry {registry} is not allowed: Berth contacts {which} listed in "
            "BERTH_ALLOWED_REGISTRIES (host, host:port, *.domain or a CIDR range); add it there "
            "to allow it."
        )

    def close(self) -> None:
        self._resolver.shutdown(wait=False, cancel_futures=True)
