"""Cached metadata reads, answered before Flask.

``app.http.routes.images.cached`` keeps the exact bytes Flask sent for image list, inspect and
history answers in the chosen engine's metadata cache, keyed by the raw path and query string,
together with the scope the route declares and its rule. ``CachedReads`` sits in front of Flask and
answers a ``GET`` whose key is in that cache itself: it checks the bearer token, its scope and
its engines, echoes the request id, counts the request in the metrics and writes the access line,
as Flask's hooks would, in a fraction of the time.

Anything else goes to Flask untouched: a miss, any other method, and every request that is not
plainly allowed (no token, a bad one, a missing scope or engine), so every refusal is still made,
worded and logged in one place. An entry exists only after Flask answered the same path and query
with a 200, so the key alone carries that validation; and it lives in the cache of the engine
Flask chose, so a lookup can only miss if the engine is read otherwise here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from flask import Flask

from app.http.auth import ANONYMOUS, PUBLIC, Principal, bearer_token
from app.http.operation import ENGINE_PARAM, JSON_MIME
from app.observability.logs import log_access, request_id_from
from app.observability.metrics import observe_request, observe_stream_out


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A 200 JSON answer as Flask sent it, with what is needed to send it again."""

    scope: str
    route: str
    body: bytes


def cache_key(environ: dict[str, Any]) -> tuple[str, str]:
    """The raw path and query string: what both Flask's views and ``CachedReads`` look up."""
    return environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")


class CachedReads:
    """WSGI middleware answering cached reads; see the module docstring."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.flask = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET":
            started = time.perf_counter()
            found = self._lookup(environ)
            if found is not None:
                return self._answer(environ, start_response, started, *found)
        return self.wsgi_app(environ, start_response)

    def _lookup(self, environ: dict[str, Any]) -> tuple[CachedAnswer, Principal] | None:
        key = cache_key(environ)
        pool = self.flask.extensions["berth.engines"]
        engine_name = _engine_name(key[1], pool.default)
        engine = pool.existing(engine_name) if engine_name is not None else None
        if engine is None:
            return None
        answer = engine.cache.get(key, count_miss=False)  # Flask's view counts real misses
        if answer is None:
            return None
        principal = self._principal(environ, answer.scope)
        if principal is None or not principal.allows_engine(engine_name):
            return None
        return answer, principal

    def _principal(self, environ: dict[str, Any], scope: str) -> Principal | None:
        """The caller if its token is valid and has ``scope``; None sends the request to Flask."""
        if scope == PUBLIC or self.flask.config["BERTH_AUTH"] == "disabled":
            return ANONYMOUS
        token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
        principal = self.flask.extensions["berth.tokens"].authenticate(token) if token else None
        if principal is None or not principal.allows(scope):
            return None
        return principal

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: Callable,
        started: float,
        answer: CachedAnswer,
        principal: Principal,
    ) -> list[bytes]:
        body = answer.body
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response(
            "200 OK",
            [
                ("Content-Type", JSON_MIME),
                ("Content-Length", str(len(body))),
                ("X-Request-Id", request_id),
            ],
        )
        seconds = time.perf_counter() - started
        observe_request("GET", answer.route, 200, seconds)
        observe_stream_out(len(body))
        log_access(
            request_id=request_id,
            method="GET",
            path=_decoded(environ.get("PATH_INFO", "")),
            status=200,
            token=principal.name,
            remote=environ.get("REMOTE_ADDR"),
            seconds=seconds,
        )
        return [body]


def _engine_name(query: str, default: str) -> str | None:
    """The engine ``?engine=`` names (``default`` without it); None if given more than once."""
    if ENGINE_PARAM not in query:
        return default
    names = parse_qs(query, keep_blank_values=True).get(ENGINE_PARAM)
    if names is None:
        return default
    return names[0] if len(names) == 1 else None


def _decoded(path_info: str) -> str:
    """PATH_INFO as Flask's ``request.path`` reads it (WSGI carries it as latin-1)."""
    return path_info.encode("latin-1").decode("utf-8", "replace")
