"""Test tokens (one per scope) and the outbound settings that allow the harness's registries.

Shared by tests and fixtures alike; tests import from here, never from conftest.py.
"""

from __future__ import annotations

import secrets

from app.http.auth import SCOPES

TOKENS = {name: f"test-{name}-{secrets.token_hex(12)}" for name in SCOPES}


def token_entries() -> list[dict]:
    return [
        {"name": f"{name}-token", "token": token, "scopes": [name]}
        for name, token in TOKENS.items()
    ]


def auth(scope: str = "admin") -> dict[str, str]:
    """Authorization headers for a token holding exactly ``scope``."""
    return {"Authorization": f"Bearer {TOKENS[scope]}"}


def harness_registries(harness) -> list[str]:
    """The ``host:port`` of every harness registry and of the token registry's realm, and
    Docker Hub's names (the engine's default; its requests end at the dead-end proxy).

    Tests run the policy as a strict allow-list (``BERTH_ALLOW_PUBLIC_REGISTRIES`` false), so
    Berth never looks up a name in DNS: no query leaves the machine.
    """
    addresses = [entry["address"] for entry in harness["registries"].values()]
    return [*addresses, token_realm(harness), "docker.io"]


def token_realm(harness) -> str:
    return f"127.0.0.1:{harness['registries']['token']['token_port']}"
