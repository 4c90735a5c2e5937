"""Reaching a registry from a request: its credentials, the outbound policy, a v2 client.

Credentials come from ``X-Registry-Auth``, else from ``BERTH_REGISTRY_AUTH_FILE``; a registry the
outbound policy refuses is a 403 REGISTRY_NOT_ALLOWED before anything is sent to it or to the
engine. Shared by the registry, search, pull, push and distribution views.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from app.domain.registry_auth import HEADER as AUTH_HEADER
from app.errors import PROBLEM_MIME, BerthError
from app.http.accessors import services
from app.registry.addresses import validate_registry
from app.registry.client import RegistryClient
from app.registry.credentials import resolve_auth

VERIFY_TIMEOUT = 10.0  # seconds a push's check of the registry may take

REGISTRY_AUTH_HEADER = {
    AUTH_HEADER: {
        "schema": {"type": "string"},
        "description": "Registry credentials for this call: base64url of JSON "
        '`{"username", "password", "serveraddress"}` or `{"identitytoken", "serveraddress"}` '
        "(the engine's format). Wins over credentials stored in BERTH_REGISTRY_AUTH_FILE. "
        "Never logged or stored.",
    }
}
REGISTRY_RESPONSES = {
    403: {
        "description": "The token lacks the scope (FORBIDDEN), the outbound policy does not "
        "allow the registry or its token realm (REGISTRY_NOT_ALLOWED), or the registry wants "
        "credentials or refused them (REGISTRY_AUTH_FAILED).",
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    },
    502: {
        "description": "The registry does not answer (REGISTRY_UNREACHABLE) or failed "
        "otherwise (REGISTRY_ERROR, with its message).",
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    },
}


def registry_client(
    registry: str,
    auth: dict[str, str] | None = None,
    *,
    resolve: bool = True,
    timeout: float | None = None,
) -> RegistryClient:
    """A v2 client for ``registry`` with the request's (else the stored) credentials.

    ``resolve=False`` uses ``auth`` as given (already resolved by the caller). A registry the
    outbound policy refuses is a 403 REGISTRY_NOT_ALLOWED before any connection.
    """
    registry = validate_registry(registry)
    services().outbound.check(registry)
    if resolve:
        auth = _request_auth(registry)
    config = current_app.config
    return RegistryClient(
        registry,
        auth,
        insecure=config["BERTH_INSECURE_REGISTRIES"],
        timeout=timeout or config["BERTH_REGISTRY_TIMEOUT"],
        tokens=services().registry_tokens,
        policy=services().outbound,
    )


def registry_credentials(registry: str) -> dict[str, Any] | None:
    """The request's (else the stored) credentials for ``registry``, once the outbound policy
    allows it (403 REGISTRY_NOT_ALLOWED before the engine is asked anything)."""
    auth = _request_auth(registry)
    services().outbound.check(registry)
    return auth


def push_verifier(registry: str, auth: dict[str, Any] | None) -> RegistryClient | None:
    """A v2 client that checks what a push left in ``registry``; None when the v2 client cannot
    address it (the engine's word is then the only one)."""
    try:
        return registry_client(registry, auth, resolve=False, timeout=VERIFY_TIMEOUT)
    except BerthError:
        return None


def _request_auth(registry: str) -> dict[str, Any] | None:
    return resolve_auth(registry, request.headers.get(AUTH_HEADER), services().credentials)
