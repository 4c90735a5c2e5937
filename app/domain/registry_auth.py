"""Registry credentials in the engine's ``X-Registry-Auth`` format (base64url-encoded JSON).

A client may send credentials for one call (pull, push) in ``X-Registry-Auth``, exactly as the
Docker CLI sends them to the engine::

    base64url({"username": "...", "password": "...", "serveraddress": "registry:5000"})

``parse_registry_auth_header`` decodes and checks such a value, ``encode_registry_auth`` builds
one. Error messages never repeat the value: it holds a secret. Plain logic: no flask, no docker.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from app.domain import jsonsafe
from app.errors import InvalidRegistryAuth

HEADER = "X-Registry-Auth"
MAX_HEADER_LENGTH = 16 * 1024
# The fields of the engine's AuthConfig (types.AuthConfig); anything else is refused.
FIELDS = (
    "username",
    "password",
    "auth",
    "email",
    "serveraddress",
    "identitytoken",
    "registrytoken",
)


def _invalid(reason: str) -> InvalidRegistryAuth:
    return InvalidRegistryAuth(
        f"The {HEADER} header is not valid: {reason}. It must be base64url-encoded JSON such as "
        '{"username": "...", "password": "...", "serveraddress": "host:port"}.',
        errors={HEADER: [reason]},
    )


def _b64decode(text: str) -> bytes:
    """Decode base64url or standard base64, with or without padding."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def parse_registry_auth_header(value: str | None) -> dict[str, str] | None:
    """The credentials in an ``X-Registry-Auth`` value; None when the header is absent or empty.

    Accepts the engine's fields (``username``, ``password``, ``serveraddress``, ``identitytoken``,
    ``registrytoken``, ``email``, ``auth``); an ``auth`` field (base64 ``user:password``, as in a
    Docker config file) is expanded into ``username``/``password``. Raises ValidationFailed
    (``INVALID_REGISTRY_AUTH``) for bad base64, bad JSON, unknown fields or non-string values.
    """
    if value is None or not value.strip():
        return None
    if len(value) > MAX_HEADER_LENGTH:
        raise _invalid(f"it is longer than {MAX_HEADER_LENGTH} characters")
    try:
        raw = _b64decode(value)
    except (binascii.Error, ValueError):
        raise _invalid("it is not base64url") from None
    try:
        data = jsonsafe.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _invalid("it does not decode to JSON") from None
    if not isinstance(data, dict):
        raise _invalid("it does not decode to a JSON object")
    credentials: dict[str, str] = {}
    for key, item in data.items():
        name = str(key).lower()
        if name not in FIELDS:
            raise _invalid(f"unknown field '{str(key)[:40]}' (allowed: {', '.join(FIELDS)})")
        if item is None or item == "":
            continue
        if not isinstance(item, str):
            raise _invalid(f"field '{name}' must be a string")
        credentials[name] = item
    if "auth" in credentials:
        try:
            user, sep, password = _b64decode(credentials.pop("auth")).decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise _invalid("field 'auth' is not base64 'username:password'") from None
        if not sep:
            raise _invalid("field 'auth' is not base64 'username:password'")
        credentials.setdefault("username", user)
        credentials.setdefault("password", password)
    return credentials or None


def encode_registry_auth(credentials: dict[str, Any]) -> str:
    """``credentials`` as an ``X-Registry-Auth`` value (base64url of compact JSON)."""
    payload = json.dumps(
        {k: v for k, v in credentials.items() if v is not None}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii")


def redacted(credentials: dict[str, str] | None) -> dict[str, str] | None:
    """The credentials with every secret replaced, for logs and debugging output."""
    if credentials is None:
        return None
    secret = ("password", "identitytoken", "registrytoken")
    return {k: ("***" if k in secret else v) for k, v in credentials.items()}
