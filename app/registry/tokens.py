"""Registry auth challenges and bearer tokens: parsing ``WWW-Authenticate``, the token cache,
and reading a token service's answer (bounded and validated: the token goes into a header).

Plain logic, no I/O; ``app.registry.client`` does the talking.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.registry.transport import Answer

TOKEN_EXPIRY_MARGIN = 10.0
DEFAULT_TOKEN_LIFETIME = 60.0
TOKEN_ANSWER_LIMIT = 64 * 1024
MAX_TOKEN_LENGTH = 16 * 1024
MAX_TOKEN_LIFETIME = 24 * 3600.0
_TOKEN = re.compile(r"^[!-~]+$")  # printable ASCII without spaces: safe in a header
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


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


def token_answer(response: Answer) -> tuple[str | None, float]:
    """(token, lifetime) from a token service's JSON; the token None when unusable."""
    try:
        body = response.json()
    except ValueError:
        return None, 0.0
    if not isinstance(body, dict):
        return None, 0.0
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not _TOKEN.match(token):
        return None, 0.0
    lifetime = body.get("expires_in")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token, min(float(lifetime), MAX_TOKEN_LIFETIME)
