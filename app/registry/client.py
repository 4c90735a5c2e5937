"""A small client for a registry's v2 API (docker distribution, Harbor, GitLab, Docker Hub).

Berth talks to registries directly for what the engine cannot do: list a private registry's
catalog, list tags with their digests, and check which digest a registry serves after a push.

Authentication follows the registry's ``WWW-Authenticate`` challenge: ``Basic`` gets the
credentials as they are; ``Bearer realm=...,service=...,scope=...`` gets a token from the realm
(with the credentials as HTTP Basic, or an identity token as an OAuth2 refresh token), cached per
registry, scope and credentials until it expires. Plain HTTP is used only for loopback hosts and
hosts listed in ``BERTH_INSECURE_REGISTRIES``; everything else is HTTPS. A token realm must be
HTTPS (plain HTTP only for a host listed in ``BERTH_INSECURE_REGISTRIES``) and pass the outbound
policy, like the registry itself; the realm's error bodies are never repeated to the caller.

Addresses are validated first (``app.registry.addresses``), and every exchange is bounded in
time and size (``app.registry.transport``). Credentials never appear in errors or logs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from app.errors import (
    ManifestUnknown,
    RegistryAuthFailed,
    RegistryError,
    RegistryNotAllowed,
    ValidationFailed,
)
from app.registry.addresses import api_host, listed_insecure, registry_scheme, validate_registry
from app.registry.answers import json_list, raise_for, registry_message
from app.registry.paging import MAX_CATALOG_PAGES, next_link
from app.registry.policy import OutboundPolicy
from app.registry.tokens import (
    TOKEN_ANSWER_LIMIT,
    Challenge,
    TokenCache,
    credentials_fingerprint,
    parse_challenge,
    token_answer,
)
from app.registry.transport import Answer, bounded_session, exchange

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
CATALOG_SCOPE = "registry:catalog:*"
DIGEST_CONCURRENCY = 8


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
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.registry = validate_registry(registry)
        self.auth = auth or None
        self._insecure = list(insecure)
        self.scheme = registry_scheme(self.registry, self._insecure)
        self.base = f"{self.scheme}://{api_host(self.registry)}"
        self.timeout = timeout
        self.tokens = tokens or TokenCache()
        self.session = session or bounded_session()
        self.policy = policy
        self._fingerprint = credentials_fingerprint(self.auth)
        if policy is not None:
            policy.check(self.registry)  # before any connection

    # -- transport

    def _send(self, method: str, url: str, *, name: str | None = None, **kwargs: Any) -> Answer:
        """One exchange, within BERTH_REGISTRY_TIMEOUT in total and the size caps."""
        return exchange(
            self.session,
            method,
            url,
            name=name or f"Registry {self.registry}",
            timeout=self.timeout,
            **kwargs,
        )

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
        service_name = f"The token service of registry {self.registry}"
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
            response = self._send(
                "POST", realm, name=service_name, data=form, limit=TOKEN_ANSWER_LIMIT
            )
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scopes)
            basic = self._basic()
            if basic:
                params.append(("account", basic[0]))
            response = self._send(
                "GET", realm, name=service_name, params=params, auth=basic, limit=TOKEN_ANSWER_LIMIT
            )
        if response.status_code in (401, 403):
            raise RegistryAuthFailed(
                f"The token service of registry {self.registry} refused the credentials."
                if self._fingerprint != "anonymous"
                else f"Registry {self.registry} requires credentials: send X-Registry-Auth "
                "or store them in BERTH_REGISTRY_AUTH_FILE."
            )
        if response.status_code != 200:
            # Only the status: the realm's body may be any internal service's page.
            raise RegistryError(f"{service_name} answered {response.status_code}.")
        token, lifetime = token_answer(response)
        if token is None:
            raise RegistryError(f"{service_name} sent no usable token.")
        self.tokens.put(self._token_key(challenge, scope), token, lifetime)
        return token

    def _check_realm(self, realm: str) -> None:
        """The realm must be an https URL (http only if listed insecure) the policy allows."""
        unusable = RegistryError(f"Registry {self.registry} sent an unusable token realm.")
        try:
            parts = urlsplit(realm)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise unusable from None
        if (
            len(realm) > 2048
            or parts.scheme not in ("http", "https")
            or not host
            or parts.username is not None
            or parts.password is not None
        ):
            raise unusable
        shown = f"[{host}]" if ":" in host else host
        address = f"{shown}:{port}" if port else shown
        try:
            address = validate_registry(address)
        except ValidationFailed:
            raise unusable from None
        if parts.scheme == "http" and not listed_insecure(address, self._insecure):
            raise RegistryNotAllowed(
                f"Registry {self.registry} asks for tokens over plain HTTP from {address}; "
                "Berth sends credentials over plain HTTP only to hosts listed in "
                "BERTH_INSECURE_REGISTRIES."
            )
        if self.policy is not None:
            self.policy.check(address, realm_of=self.registry)

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
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
        response = self._send(method, url, params=params, headers=headers)
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
            response = self._send(method, url, params=params, headers=headers)
        if response.status_code in (401, 403):
            raise self._auth_failed(response)
        return response

    def _auth_failed(self, response: Answer | None = None) -> RegistryAuthFailed:
        if self._fingerprint == "anonymous":
            return RegistryAuthFailed(
                f"Registry {self.registry} requires credentials: send X-Registry-Auth or store "
                "them in BERTH_REGISTRY_AUTH_FILE."
            )
        reason = ""
        if response is not None:
            _, message = registry_message(response)
            reason = f" ({message})" if message else ""
        return RegistryAuthFailed(
            f"Registry {self.registry} refused the credentials{reason}.",
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
        raise_for(response, self.registry, "the catalog")
        names = json_list(response, "repositories")
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
            raise_for(response, self.registry, f"repository '{name}'")
            page = json_list(response, "tags")
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
        raise_for(response, self.registry, f"manifest {name}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            response = self.request(
                "GET",
                f"/v2/{name}/manifests/{reference}",
                scope=f"repository:{name}:pull",
                headers={"Accept": ", ".join(MANIFEST_TYPES)},
            )
            raise_for(response, self.registry, f"manifest {name}:{reference}")
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
