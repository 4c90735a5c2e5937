"""Bearer tokens and scopes.

The scope each route × method needs comes from one table (``app.http.scopes.ROUTES``, kept in
``app.extensions["berth.routes"]``); the ``before_request`` hook installed by :func:`init_auth`
enforces it and fails closed: a route missing from the table is refused. The check itself is
``Authorizer.authorize(token, scope, engine)``, the one both Flask and the cached fast path
(``app.http.cached_reads``) make. Tokens are kept only as SHA-256 digests, compared in constant
time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request

from app.errors import EngineForbidden, Forbidden, RouteClosed, Unauthorized
from app.http.accessors import services
from app.http.token_reload import ReloadingTokens

SCOPES = ("read", "write", "delete", "push", "export", "metrics", "admin")
PUBLIC = "public"
ANY_TOKEN = "token"  # any valid token, whatever its scopes (e.g. to follow its own jobs)
BOOTSTRAP_TOKENS = "tokens.json"
BOOTSTRAP_SECRET = "admin.token"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger("berth.auth")


class TokenConfigError(ValueError):
    """A token entry is malformed (message names the entry, never its secret)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, its scopes and the engines it may use."""

    name: str
    scopes: frozenset[str]
    engines: tuple[str, ...] = field(default=("*",))

    def allows(self, needed: str) -> bool:
        return needed == ANY_TOKEN or "admin" in self.scopes or needed in self.scopes

    def allows_engine(self, engine: str) -> bool:
        return any(fnmatchcase(engine, pattern) for pattern in self.engines)

    def allows_engines(self, engines: Iterable[str | None]) -> bool:
        """May see a record touching all of ``engines`` (a job, an audit record); one that
        names no engine only with the unrestricted ``*`` glob."""
        names = [name for name in engines if name]
        if not names:
            return "*" in self.engines
        return all(self.allows_engine(name) for name in names)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


ANONYMOUS = Principal("anonymous", frozenset(SCOPES))


def required_scope(app: Flask, rule: str, method: str) -> str | None:
    """The scope ``rule`` called with ``method`` needs, from the app's route table; None when
    the route is not in the table (it is then refused)."""
    key = (rule, "GET" if method == "HEAD" else method)
    route = app.extensions["berth.routes"].get(key)
    if route is None:
        return None
    if route.public_if and app.config.get(route.public_if):
        return PUBLIC
    return route.scope


class TokenStore:
    """Token digests → principals, built from BERTH_TOKENS / BERTH_TOKENS_FILE entries."""

    def __init__(self, entries: Iterable[dict[str, Any]] = ()) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        names: set[str] = set()
        for index, entry in enumerate(entries):
            digest, principal = _parse_entry(index, entry)
            if principal.name in names:
                raise TokenConfigError(f"token entry {index}: duplicate name {principal.name!r}")
            names.add(principal.name)
            self._entries.append((digest, principal))

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str) -> Principal | None:
        """The principal whose token this is; every entry is compared, in constant time."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found = None
        for candidate, principal in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found


def _parse_entry(index: int, entry: Any) -> tuple[bytes, Principal]:
    where = f"token entry {index}"
    if not isinstance(entry, dict):
        raise TokenConfigError(f"{where}: must be an object with name, token or sha256, scopes")
    unknown = set(entry) - {"name", "token", "sha256", "scopes", "engines"}
    if unknown:
        raise TokenConfigError(f"{where}: unknown keys {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TokenConfigError(f"{where}: 'name' must be a non-empty string")
    where = f"token {name!r}"
    scopes = entry.get("scopes")
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise TokenConfigError(f"{where}: 'scopes' must be a non-empty list drawn from {SCOPES}")
    engines = entry.get("engines", ["*"])
    if not isinstance(engines, list) or not all(isinstance(e, str) and e for e in engines):
        raise TokenConfigError(f"{where}: 'engines' must be a list of names or globs")
    if ("token" in entry) == ("sha256" in entry):
        raise TokenConfigError(f"{where}: give exactly one of 'token' or 'sha256'")
    if "token" in entry:
        token = entry["token"]
        if not isinstance(token, str) or len(token) < 16:
            raise TokenConfigError(f"{where}: 'token' must be a string of at least 16 characters")
        digest = hashlib.sha256(token.encode()).digest()
    else:
        hex_digest = str(entry["sha256"]).lower()
        if not _SHA256_HEX.match(hex_digest):
            raise TokenConfigError(f"{where}: 'sha256' must be 64 hex digits")
        digest = bytes.fromhex(hex_digest)
    return digest, Principal(name, frozenset(scopes), tuple(engines))


def load_token_entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries from BERTH_TOKENS and BERTH_TOKENS_FILE, else the bootstrap file in the data dir."""
    entries: list[dict[str, Any]] = []
    inline = config.get("BERTH_TOKENS")
    if inline is not None:
        if not isinstance(inline, list):
            raise TokenConfigError("BERTH_TOKENS must be a JSON list of token entries")
        entries.extend(inline)
    path = config.get("BERTH_TOKENS_FILE")
    if path:
        entries.extend(_read_entries(Path(path), "BERTH_TOKENS_FILE"))
    if inline is None and not path:
        bootstrap = Path(config["BERTH_DATA_DIR"]) / BOOTSTRAP_TOKENS
        if bootstrap.exists():
            entries.extend(_read_entries(bootstrap, str(bootstrap)))
    return entries


def token_files(config: dict[str, Any]) -> list[Path]:
    """The files ``load_token_entries`` reads, watched for changes while serving."""
    if config.get("BERTH_TOKENS_FILE"):
        return [Path(config["BERTH_TOKENS_FILE"])]
    if config.get("BERTH_TOKENS") is None:
        return [Path(config["BERTH_DATA_DIR"]) / BOOTSTRAP_TOKENS]
    return []


def _read_entries(path: Path, label: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise TokenConfigError(f"{label}: cannot read {path}: {e.strerror}") from None
    except ValueError:
        raise TokenConfigError(f"{label}: {path} is not valid JSON") from None
    if not isinstance(data, list):
        raise TokenConfigError(f"{label}: {path} must hold a JSON list of token entries")
    return data


def ensure_bootstrap_token(config: dict[str, Any]) -> tuple[str | None, Path]:
    """With no tokens configured, create an admin token once under the data dir.

    Returns ``(token, path)``: the new token (None if one existed already) and the file holding
    it (mode 0600). The tokens file beside it holds only the token's SHA-256.
    """
    data_dir = Path(config["BERTH_DATA_DIR"])
    secret_path = data_dir / BOOTSTRAP_SECRET
    tokens_path = data_dir / BOOTSTRAP_TOKENS
    if tokens_path.exists():
        return None, secret_path
    data_dir.mkdir(parents=True, exist_ok=True)
    token = "berth_" + secrets.token_urlsafe(32)
    entry = {"name": "admin", "sha256": hashlib.sha256(token.encode()).hexdigest()}
    entry["scopes"] = ["admin"]
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    tokens_path.write_text(json.dumps([entry], indent=2) + "\n")
    return token, secret_path


class Authorizer:
    """Who may do what: the one check both request paths make (Flask's hook, the fast path)."""

    def __init__(self, tokens: ReloadingTokens, disabled: bool) -> None:
        self.tokens = tokens
        self.disabled = disabled

    def authorize(self, token: str, scope: str, engine: str | None = None) -> Principal:
        """The caller ``token`` names, if it may use ``scope`` (and ``engine``, when given).

        Raises Unauthorized (no token, or not a valid one) or Forbidden (scope, engine); a
        Forbidden carries the caller as ``principal``, for the access line and the audit record.
        """
        if scope == PUBLIC or self.disabled:
            principal = ANONYMOUS
        elif not token:
            raise Unauthorized(
                "Send 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="berth"'},
            )
        else:
            found = self.tokens.authenticate(token)
            if found is None:
                raise Unauthorized(
                    "The bearer token is not valid.",
                    headers={"WWW-Authenticate": 'Bearer realm="berth", error="invalid_token"'},
                )
            principal = found
            if not principal.allows(scope):
                refusal = Forbidden(
                    f"This operation needs the '{scope}' scope.",
                    headers={
                        "WWW-Authenticate": f'Bearer realm="berth", error="insufficient_scope", '
                        f'scope="{scope}"'
                    },
                    required_scope=scope,
                )
                refusal.principal = principal  # type: ignore[attr-defined]
                raise refusal
        if engine is not None:
            check_engine(principal, engine)
        return principal


def check_engine(principal: Principal, engine: str, named: bool = True) -> None:
    """Refuse (403 ENGINE_FORBIDDEN) an engine the caller's token may not use; ``named``: the
    request named it (otherwise it is the default one, whose name is not told)."""
    if not principal.allows_engine(engine):
        which = f"the engine '{engine}'" if named else "the default engine; name one with ?engine="
        error = EngineForbidden(f"This token may not use {which}.")
        error.principal = principal  # type: ignore[attr-defined]
        raise error


def init_auth(app: Flask) -> Authorizer:
    """The token store (re-read when its file changes) behind the app's Authorizer, and the
    before-request check that enforces the route table with it."""
    store = ReloadingTokens(
        lambda: TokenStore(load_token_entries(app.config)),
        token_files(app.config),
        error=TokenConfigError,
    )
    disabled = app.config["BERTH_AUTH"] == "disabled"
    if disabled:
        log.warning(
            "BERTH_AUTH=disabled: every caller has every scope; never do this in production"
        )
    elif not len(store):
        log.error("no tokens configured: every request needing a scope will be refused (401)")
    app.before_request(_authenticate)
    return Authorizer(store, disabled)


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value; "" for anything else."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _authenticate() -> None:
    if request.url_rule is None:  # routing failed; the 404/405 follows as problem+json
        return
    needed = required_scope(current_app, request.url_rule.rule, request.method)
    if needed is None:
        raise RouteClosed("This route declares no scope and is closed.")
    g.principal = ANONYMOUS
    token = bearer_token(request.headers.get("Authorization", ""))
    try:
        g.principal = services().authorizer.authorize(token, needed)
    except Forbidden as refused:
        g.principal = getattr(refused, "principal", ANONYMOUS)
        raise
