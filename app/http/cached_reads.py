"""Cached metadata reads, answered before Flask.

``app.http.routes.images.cached`` keeps the exact bytes Flask sent for image list, inspect and
history answers in the chosen engine's metadata cache, keyed by the raw path and query string,
together with the scope the route declares and its rule. ``CachedReads`` sits in front of Flask and
answers a ``GET`` whose key is in that cache itself, in a fraction of Flask's time, with the same
pieces Flask's hooks use: ``Authorizer.authorize`` (token, scope, engine; ``app.http.auth``) and
``RequestRecord`` (request id, metrics and access line; ``app.http.access_log``).

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

from app.errors import BerthError
from app.http.access_log import RequestRecord
from app.http.accessors import services
from app.http.auth import Principal, bearer_token
from app.http.operation import ENGINE_PARAM, JSON_MIME
from app.observability.metrics import observe_stream_out


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
        self.services = services(app)  # built before this front is put in place
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
        engines = self.services.engines
        engine_name = _engine_name(key[1], engines.default)
        engine = engines.existing(engine_name) if engine_name is not None else None
        if engine is None:
            return None
        answer = engine.cache.get(key, count_miss=False)  # Flask's view counts real misses
        if answer is None:
            return None
        token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
        try:
            principal = self.services.authorizer.authorize(token, answer.scope, engine_name)
        except BerthError:  # Flask refuses it, in its own words, and logs the refusal
            return None
        return answer, principal

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: Callable,
        started: float,
        answer: CachedAnswer,
        principal: Principal,
    ) -> list[bytes]:
        body = answer.body
        record = RequestRecord.begin(environ, started)
        start_response(
            "200 OK",
            [
                ("Content-Type", JSON_MIME),
                ("Content-Length", str(len(body))),
                ("X-Request-Id", record.request_id),
            ],
        )
        record.answered(answer.route, 200, principal.name)
        observe_stream_out(len(body))  # what ByteCountingMiddleware counts for Flask's answers
        return [body]


def _engine_name(query: str, default: str) -> str | None:
    """The engine ``?engine=`` names (``default`` without it); None if given more than once."""
    if ENGINE_PARAM not in query:
        return default
    names = parse_qs(query, keep_blank_values=True).get(ENGINE_PARAM)
    if names is None:
        return default
    return names[0] if len(names) == 1 else None
