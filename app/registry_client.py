"""A small client for a registry's v2 API (docker distribution, Harbor, GitLab, Docker Hub).

Berth talks to registries directly for what the engine cannot do: list a private registry's
catalog, list tags with their digests, and check which digest a registry serves after a push.

Authentication follows the registry's ``WWW-Authenticate`` challenge: ``Basic`` gets the
credentials as they are; ``Bearer realm=...,service=...,scope=...`` gets a token from the realm
(with the credentials as HTTP Basic, or an identity token as an OAuth2 refresh token), cached per
registry, scope and credentials until it expires. Plain HTTP is used only for loopback hosts and
hosts listed in ``BERTH_INSECURE_REGISTRIES``; everything else is HTTPS.

``{registry}`` values from users are validated as ``host[:port]`` (never a URL, a path or
userinfo) before any connection is made. Credentials never appear in errors or logs.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from app.errors import (
    ManifestUnknown,
    NotFound,
    RegistryAuthFailed,
    RegistryError,
    RegistryUnreachable,
    ValidationFailed,
)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
CATALOG_SCOPE = "registry:catalog:*"
TOKEN_EXPIRY_MARGIN = 10.0
DEFAULT_TOKEN_LIFETIME = 60.0
MAX_CATALOG_PAGES = 50
DIGEST_CONCURRENCY = 8

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_PORT = re.compile(
    rf"^(?:(?P<name>{_LABEL}(?:\.{_LABEL})*)|\[(?P<v6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{{1,5}}))?$"
)
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


# --------------------------------------------------------------------------- addresses


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


def _invalid_registry(text: Any) -> ValidationFailed:
    shown = text if isinstance(text, str) and len(text) <= 100 else "(value)"
    return ValidationFailed(
        f"'{shown}' is not a registry address: give host or host:port "
        "(no scheme, path or user name), e.g. 'registry.example.com:5000'.",
        code="INVALID_REGISTRY",
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
    if is_loopback(host):
        return True
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


# --------------------------------------------------------------------------- challenges


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer" (lowercase)
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header, or None if there is none."""
    header = (header or "").strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {}
    for name, value in _CHALLENGE_PARAM.findall(rest):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name.lower()] = value
    return Challenge(scheme.lower(), params)


def next_link(header: str | None) -> str | None:
    """The target of a ``Link: <...>; rel="next"`` header."""
    if not header:
        return None
    match = _LINK_NEXT.search(header)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- tokens


def credentials_fingerprint(auth: dict[str, Any] | None) -> str:
    """A one-way key for caching tokens per set of credentials (never the secret itself)."""
    if not auth:
        return "anonymous"
    material = json.dumps(
        [auth.get(k) for k in ("username", "password", "identitytoken", "registrytoken")]
    )
    return hashlib.sha256(material.encode()).hexdigest()


class TokenCache:
    """Bearer tokens by (registry, service, scope, credentials); thread-safe, expiry-aware."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._challenges: dict[str, Challenge] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            token, expires = entry
            if self._clock() >= expires:
                del self._tokens[key]
                return None
            return token

    def put(self, key: tuple[str, ...], token: str, lifetime: float) -> None:
        with self._lock:
            if len(self._tokens) > 1000:
                now = self._clock()
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            expires = self._clock() + max(lifetime - TOKEN_EXPIRY_MARGIN, 1.0)
            self._tokens[key] = (token, expires)

    def drop(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def challenge(self, registry: str) -> Challenge | None:
        with self._lock:
            return self._challenges.get(registry)

    def remember_challenge(self, registry: str, challenge: Challenge) -> None:
        with self._lock:
            self._challenges[registry] = challenge


# --------------------------------------------------------------------------- client


def _registry_message(response: requests.Response) -> tuple[str | None, str]:
    """(first error code, message) of a registry error body, as the v2 API spells them."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0] if isinstance(body["errors"][0], dict) else {}
        code = first.get("code")
        message = first.get("message") or code or ""
        return (str(code) if code else None), str(message)
    text = (response.text or "").strip().splitlines()
    return None, (text[0][:300] if text else f"HTTP {response.status_code}")


class RegistryClient:
    """One registry's v2 API, with the credentials of one request (or none)."""

    def __init__(
        self,
        registry: str,
        auth: dict[str, Any] | None = None,
        *,
        insecure: Iterable[str] = (),
        timeout: float = 30.0,
        tokens: TokenCache | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.registry = validate_registry(registry)
        self.auth = auth or None
        self._insecure = list(insecure)
        self.scheme = registry_scheme(self.registry, self._insecure)
        self.base = f"{self.scheme}://{api_host(self.registry)}"
        self.timeout = timeout
        self.tokens = tokens or TokenCache()
        self.session = session or requests.Session()
        self._fingerprint = credentials_fingerprint(self.auth)

    # -- transport

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.SSLError:
            raise RegistryUnreachable(
                f"TLS with registry {self.registry} failed (plain HTTP is used only for "
                "loopback hosts and BERTH_INSECURE_REGISTRIES)."
            ) from None
        except requests.exceptions.Timeout:
            raise RegistryUnreachable(
                f"Registry {self.registry} did not answer within {self.timeout:g} s."
            ) from None
        except requests.exceptions.ConnectionError as e:
            raise RegistryUnreachable(
                f"Cannot reach registry {self.registry}: {_connection_reason(e)}."
            ) from None
        except requests.exceptions.RequestException as e:
            raise RegistryError(
                f"Request to registry {self.registry} failed: {type(e).__name__}"
            ) from None

    def _basic(self) -> tuple[str, str] | None:
        if self.auth and self.auth.get("username") and self.auth.get("password") is not None:
            return str(self.auth["username"]), str(self.auth["password"])
        return None

    def _token_key(self, challenge: Challenge, scope: str | None) -> tuple[str, ...]:
        service = challenge.params.get("service", "")
        realm = challenge.params.get("realm", "")
        return (self.registry, realm, service, scope or "", self._fingerprint)

    def _authorization(self, challenge: Challenge | None, scope: str | None) -> str | None:
        """A ready Authorization header for ``challenge`` without asking anyone, if possible."""
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            basic = self._basic()
            return _basic_header(*basic) if basic else None
        if challenge.scheme == "bearer":
            if self.auth and self.auth.get("registrytoken"):
                return f"Bearer {self.auth['registrytoken']}"
            token = self.tokens.get(self._token_key(challenge, scope))
            return f"Bearer {token}" if token else None
        return None

    def _fetch_token(self, challenge: Challenge, scope: str | None) -> str:
        realm = challenge.params.get("realm", "")
        self._check_realm(realm)
        scopes = [s for s in (scope, challenge.params.get("scope")) if s]
        scopes = list(dict.fromkeys(scopes))
        service = challenge.params.get("service")
        identity = (self.auth or {}).get("identitytoken")
        if identity:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": identity,
                "client_id": "berth",
                "access_type": "online",
            }
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)
            response = self._send("POST", realm, data=form, allow_redirects=False)
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scopes)
            basic = self._basic()
            if basic:
                params.append(("account", basic[0]))
            response = self._send("GET", realm, params=params, auth=basic, allow_redirects=False)
        if response.status_code in (401, 403):
            raise RegistryAuthFailed(
                f"The token service of registry {self.registry} refused the credentials."
                if self._fingerprint != "anonymous"
                else f"Registry {self.registry} requires credentials: send X-Registry-Auth "
                "or store them in BERTH_REGISTRY_AUTH_FILE."
            )
        if response.status_code != 200:
            _, message = _registry_message(response)
            raise RegistryError(
                f"The token service of registry {self.registry} answered "
                f"{response.status_code}: {message}"
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise RegistryError(f"The token service of registry {self.registry} sent no token.")
        try:
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        self.tokens.put(self._token_key(challenge, scope), str(token), lifetime)
        return str(token)

    def _check_realm(self, realm: str) -> None:
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            raise RegistryError(f"Registry {self.registry} sent an unusable token realm.")
        if parts.scheme == "http":
            host = parts.hostname
            port = f":{parts.port}" if parts.port else ""
            shown = f"[{host}]" if ":" in host else host
            if not allows_plain_http(f"{shown}{port}", self._insecure):
                raise RegistryError(
                    f"Registry {self.registry} asks for tokens over plain HTTP from {host}; "
                    "Berth sends credentials over plain HTTP only to loopback hosts and "
                    "BERTH_INSECURE_REGISTRIES."
                )

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send ``method path`` (a ``/v2/...`` path), answering one auth challenge if asked.

        Returns the response whatever its status, except that 401/403 after authenticating
        raise RegistryAuthFailed.
        """
        url = self.base + path
        headers = dict(headers or {})
        known = self.tokens.challenge(self.registry)
        authorization = self._authorization(known, scope)
        if authorization:
            headers["Authorization"] = authorization
        response = self._send(method, url, params=params, headers=headers, allow_redirects=False)
        if response.status_code == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if challenge is None or challenge.scheme not in ("basic", "bearer"):
                raise RegistryAuthFailed(
                    f"Registry {self.registry} refused the request and offers no supported "
                    "authentication (Basic or Bearer)."
                )
            self.tokens.remember_challenge(self.registry, challenge)
            if authorization and challenge.scheme == "bearer" and known == challenge:
                self.tokens.drop(self._token_key(challenge, scope))  # expired or revoked
            authorization = self._authorization(challenge, scope) if not authorization else None
            if authorization is None:
                if challenge.scheme == "basic":
                    raise self._auth_failed()
                authorization = f"Bearer {self._fetch_token(challenge, scope)}"
            headers["Authorization"] = authorization
            response = self._send(
                method, url, params=params, headers=headers, allow_redirects=False
            )
        if response.status_code in (401, 403):
            raise self._auth_failed(response)
        return response

    def _auth_failed(self, response: requests.Response | None = None) -> RegistryAuthFailed:
        if self._fingerprint == "anonymous":
            return RegistryAuthFailed(
                f"Registry {self.registry} requires credentials: send X-Registry-Auth or store "
                "them in BERTH_REGISTRY_AUTH_FILE."
            )
        reason = ""
        if response is not None:
            _, message = _registry_message(response)
            reason = f" ({message})" if message else ""
        return RegistryAuthFailed(
            f"Registry {self.registry} refused the credentials{reason}.",
        )

    def _raise_for(self, response: requests.Response, what: str) -> None:
        if response.status_code < 400:
            return
        code, message = _registry_message(response)
        if response.status_code == 404:
            if code == "MANIFEST_UNKNOWN":
                raise ManifestUnknown(f"{what}: {message}")
            if code == "NAME_UNKNOWN" or code is None:
                raise NotFound(f"{what}: {message}", code="REPOSITORY_NOT_FOUND")
            raise NotFound(f"{what}: {message}")
        raise RegistryError(
            f"Registry {self.registry} answered {response.status_code} for {what}: {message}"
        )

    # -- API

    def catalog_page(self, n: int, last: str | None = None) -> tuple[list[str], bool]:
        """One page of ``/v2/_catalog`` after ``last``: (names, whether more follow)."""
        params: dict[str, Any] = {"n": n}
        if last:
            params["last"] = last
        response = self.request("GET", "/v2/_catalog", scope=CATALOG_SCOPE, params=params)
        if response.status_code == 404:
            raise RegistryError(f"Registry {self.registry} does not offer a catalog.")
        self._raise_for(response, "the catalog")
        names = _json_list(response, "repositories")
        more = next_link(response.headers.get("Link")) is not None
        return names, more

    def tags(self, name: str, page_size: int = 1000) -> list[str]:
        """Every tag of ``name`` (``/v2/<name>/tags/list``, following ``Link`` pages).

        Registries differ here (distribution 2.x ignores ``n``/``last`` and does not sort), so
        the whole list is read and callers page it themselves.
        """
        tags: list[str] = []
        params: dict[str, Any] = {"n": page_size}
        for _ in range(MAX_CATALOG_PAGES):
            response = self.request(
                "GET", f"/v2/{name}/tags/list", scope=f"repository:{name}:pull", params=params
            )
            self._raise_for(response, f"repository '{name}'")
            page = _json_list(response, "tags")
            tags.extend(page)
            link = next_link(response.headers.get("Link"))
            following = parse_qs(urlsplit(link).query).get("last", [None])[0] if link else None
            if not page or not following or following == params.get("last"):
                break
            params = {"n": page_size, "last": following}
        return tags

    def manifest_digest(self, name: str, reference: str) -> str:
        """The digest the registry serves for ``name:reference`` (``Docker-Content-Digest``)."""
        response = self.request(
            "HEAD",
            f"/v2/{name}/manifests/{reference}",
            scope=f"repository:{name}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if response.status_code == 404:
            raise ManifestUnknown(f"Registry {self.registry} has no manifest {name}:{reference}.")
        self._raise_for(response, f"manifest {name}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            response = self.request(
                "GET",
                f"/v2/{name}/manifests/{reference}",
                scope=f"repository:{name}:pull",
                headers={"Accept": ", ".join(MANIFEST_TYPES)},
            )
            self._raise_for(response, f"manifest {name}:{reference}")
            digest = response.headers.get("Docker-Content-Digest") or (
                "sha256:" + hashlib.sha256(response.content).hexdigest()
            )
        return digest

    def tag_digests(self, name: str, tags: list[str]) -> list[dict[str, Any]]:
        """``[{"tag", "digest"}]`` for ``tags`` (a tag deleted meanwhile gets digest None)."""

        def one(tag: str) -> dict[str, Any]:
            try:
                return {"tag": tag, "digest": self.manifest_digest(name, tag)}
            except ManifestUnknown:
                return {"tag": tag, "digest": None}

        if len(tags) <= 1:
            return [one(t) for t in tags]
        with ThreadPoolExecutor(max_workers=min(DIGEST_CONCURRENCY, len(tags))) as pool:
            return list(pool.map(one, tags))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _basic_header(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _json_list(response: requests.Response, key: str) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        raise RegistryError(f"The registry sent an unreadable {key} list.") from None
    values = body.get(key) if isinstance(body, dict) else None
    if values is None:
        return []
    if not isinstance(values, list):
        raise RegistryError(f"The registry sent an unreadable {key} list.")
    return [str(v) for v in values]


def _connection_reason(error: Exception) -> str:
    text = str(error).lower()
    for marker, reason in (
        ("connection refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network is unreachable"),
        ("connection reset", "connection reset"),
        ("remote end closed", "connection closed by the registry"),
    ):
        if marker in text:
            return reason
    return "connection failed"


# --------------------------------------------------------------------------- catalog paging


def name_matcher(q: str | None) -> Callable[[str], bool]:
    """A filter for repository names: a glob when ``q`` has ``* ? [``, else a substring.

    Matching ignores case (repository names are lowercase anyway).
    """
    if not q:
        return lambda name: True
    needle = q.lower()
    if any(c in needle for c in "*?["):
        return lambda name: fnmatchcase(name.lower(), needle)
    return lambda name: needle in name.lower()


@dataclass
class Page:
    items: list[str]
    next_last: str | None  # cursor for the following page, None when this is the last


def scan_pages(
    fetch: Callable[[int, str | None], tuple[list[str], bool]],
    *,
    n: int,
    last: str | None = None,
    matches: Callable[[str], bool] | None = None,
    page_size: int | None = None,
    max_pages: int = MAX_CATALOG_PAGES,
) -> Page:
    """Collect up to ``n`` matching names after ``last`` from a lexically ordered, paged list.

    ``fetch(size, last)`` returns one upstream page and whether more follow. Filtering happens
    here, so upstream pages are read until ``n`` matches are found and one more match is known
    to exist (then ``next_last`` is the last name returned), or the list ends (``next_last`` is
    None). After ``max_pages`` upstream pages the page is cut short, with ``next_last`` at the
    last name examined, so a sparse filter never makes one request unbounded. Names not after
    the cursor are skipped, so an upstream that ignores ``last`` cannot make this loop.
    """
    size = page_size or n
    found: list[str] = []
    cursor = last
    for _ in range(max_pages):
        names, more = fetch(size, cursor)
        progressed = False
        for name in names:
            if cursor is not None and name <= cursor:
                continue
            cursor, progressed = name, True
            if matches is not None and not matches(name):
                continue
            if len(found) == n:
                return Page(found, found[-1])
            found.append(name)
        if not more or not progressed:
            return Page(found, None)
        if len(found) == n and matches is None:
            return Page(found, found[-1])  # unfiltered: more upstream means more matches
    return Page(found, cursor)


def page_of(names: list[str], *, n: int, last: str | None = None) -> Page:
    """Berth's own paging over a complete list: sorted, deduplicated, ``n`` after ``last``."""
    ordered = sorted(set(names))
    start = bisect.bisect_right(ordered, last) if last else 0
    items = ordered[start : start + n]
    return Page(items, items[-1] if start + n < len(ordered) else None)


def page_link(base: str, params: dict[str, Any]) -> str:
    """``base?params`` with the None values left out."""
    query = urlencode([(k, v) for k, v in params.items() if v not in (None, "")])
    return f"{base}?{query}" if query else base
