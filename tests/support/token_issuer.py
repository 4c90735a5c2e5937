"""The token issuer of the harness's ``token`` registry (stdlib only; tokens via the harness).

The registry's realm is ``http://127.0.0.1:<token_port>/token``; this server answers there::

    issuer = token_issuer(state)          # one per process, started on first use
    issuer.users["alice"] = "secret"      # accounts (the harness's basic user is preset)
    issuer.requests                       # what was asked: [{"method", "user", "scopes", ...}]

    GET  /token?service=..&scope=repository:NAME:push,pull[&scope=...]   HTTP Basic credentials
    POST /token  grant_type=password (username, password) or grant_type=refresh_token
                 (refresh_token = an identity token from ``identity_tokens``)

Known credentials get a token granting every action asked for; wrong credentials get 401; no
credentials get 401 unless ``anonymous`` names the actions anonymous callers may have (then the
token grants only those). Tokens come from ``make_registry_token`` (RS256, x5c header).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.harness import harness_module

_LOCK = threading.Lock()
_ISSUERS: dict[int, TokenIssuer] = {}


def parse_scope(scope: str) -> dict[str, Any] | None:
    """``repository:team/app:push,pull`` → a JWT access entry."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenIssuer:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.port = state["registries"]["token"]["token_port"]
        basic = state["registries"]["basic"]
        self.users: dict[str, str] = {basic["username"]: basic["password"]}
        self.identity_tokens: dict[str, str] = {}  # identity token -> user
        self.anonymous: set[str] = set()  # actions anonymous callers get, e.g. {"pull"}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._harness = harness_module()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> TokenIssuer:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="token-issuer", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def issue(self, user: str | None, scopes: list[str], method: str) -> tuple[int, dict]:
        access = []
        for scope in scopes:
            entry = parse_scope(scope)
            if entry is None:
                continue
            if user is None:
                entry["actions"] = [a for a in entry["actions"] if a in self.anonymous]
            access.append(entry)
        with self._lock:
            self.requests.append(
                {"method": method, "user": user, "scopes": list(scopes), "granted": access}
            )
        token = self._harness.make_registry_token(self.state, access, subject=user or "")
        return 200, {"token": token, "access_token": token, "expires_in": 300}

    def _refuse(self, user: str | None, scopes: list[str], method: str) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(
                {"method": method, "user": user, "scopes": list(scopes), "refused": True}
            )
        return 401, {"details": "incorrect username or password"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _basic(self) -> tuple[str, str] | None:
                header = self.headers.get("Authorization", "")
                scheme, _, value = header.partition(" ")
                if scheme.lower() != "basic":
                    return None
                try:
                    user, _, password = base64.b64decode(value).decode().partition(":")
                except ValueError:
                    return ("", "")
                return user, password

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path != "/token":
                    self._send(404, {"error": "not found"})
                    return
                params = parse_qs(parts.query)
                scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
                creds = self._basic()
                if creds is None:
                    if issuer.anonymous:
                        self._send(*issuer.issue(None, scopes, "GET"))
                    else:
                        self._send(*issuer._refuse(None, scopes, "GET"))
                    return
                user, password = creds
                if issuer.users.get(user) != password:
                    self._send(*issuer._refuse(user, scopes, "GET"))
                    return
                self._send(*issuer.issue(user, scopes, "GET"))

            def do_POST(self) -> None:  # noqa: N802
                if urlsplit(self.path).path != "/token":
                    self._send(404, {"error": "not found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
                grant = (form.get("grant_type") or [""])[0]
                user = None
                if grant == "password":
                    name = (form.get("username") or [""])[0]
                    if issuer.users.get(name) == (form.get("password") or [""])[0]:
                        user = name
                elif grant == "refresh_token":
                    user = issuer.identity_tokens.get((form.get("refresh_token") or [""])[0])
                if user is None:
                    self._send(*issuer._refuse(None, scopes, "POST"))
                    return
                status, body = issuer.issue(user, scopes, "POST")
                self._send(status, body)

        return Handler


def token_issuer(state: dict[str, Any]) -> TokenIssuer:
    """The issuer for ``state``'s token registry, started once per process."""
    port = state["registries"]["token"]["token_port"]
    with _LOCK:
        issuer = _ISSUERS.get(port)
        if issuer is None:
            issuer = TokenIssuer(state).start()
            _ISSUERS[port] = issuer
        return issuer
