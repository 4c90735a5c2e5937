"""Cached metadata reads, answered before Flask.

``cached`` keeps the exact bytes Flask sent for image list, inspect, history, layers and usage
answers in the chosen engine's metadata cache, keyed by the raw path and query string, together
with their ``ETag``, extra headers (``Link``), the scope the route declares and its rule.
``CachedReads`` sits in front of Flask and answers a ``GET`` whose key is in that cache itself
(a 304 when ``If-None-Match`` names its tag), in a fraction of Flask's time, with the same
pieces Flask's hooks use: ``Authorizer.authorize`` (token, scope, engine; ``app.http.auth``) and
``RequestRecord`` (request id, metrics and access line; ``app.http.access_log``).

Anything else goes to Flask untouched: a miss, any other method, a request with an ``Origin``
when CORS is on (``app.http.cors``), and every request that is not plainly allowed (no token, a
bad one, a missing scope or engine), so every refusal is still made, worded and logged in one
place. An entry exists only after Flask answered the same path and query
with a 200, so the key alone carries that validation; and it lives in the cache of the engine
Flask chose, so a lookup can only miss if the engine is read otherwise here.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import marshmallow as ma
from flask import Flask, Response, current_app, request

from app.errors import BerthError
from app.http.access_log import RequestRecord
from app.http.accessors import get_engine, services
from app.http.auth import Principal, bearer_token, required_scope
from app.http.operation import ENGINE_PARAM, JSON_MIME, json_body, json_response
from app.observability.metrics import observe_stream_out


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A 200 JSON answer as Flask sent it, with what is needed to send it again.

    ``etag`` is a digest of ``body`` taken once, when the answer is made: every worker gives the
    same answer the same tag, and a tag outlives the cache's generations while the answer stays
    the same, so ``If-None-Match`` is then answered 304 without asking the engine again.
    """

    scope: str
    route: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    etag: str = ""

    @classmethod
    def make(
        cls, scope: str, route: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()
    ) -> CachedAnswer:
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        return cls(scope, route, body, headers, f'"{digest}"')


# For ``@operation`` of the cached reads: what they add to the OpenAPI document.
ETAG_DOC = {
    "ETag": {
        "description": "Tag of this answer; send it back as If-None-Match to get a 304.",
        "schema": {"type": "string"},
    }
}
NOT_MODIFIED_DOC = {
    304: {
        "description": "Not modified: the If-None-Match tag is still this answer's.",
        "headers": ETAG_DOC,
    }
}


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match or not etag:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def cache_key(environ: dict[str, Any]) -> tuple[str, str]:
    """The raw path and query string: what both Flask's views and ``CachedReads`` look up."""
    return environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")


def cached(schema: ma.Schema) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer from the engine's metadata cache; on a miss run the view and keep its JSON body.

    Goes under ``@operation``, so scope, engine choice and query parsing have run and refused
    what they refuse. The key is the raw path and query (``CachedReads`` answers most hits before
    Flask), in the chosen engine's cache; the cache answers only what it got within the current
    generation of engine events (``app.engine.cache``). What is kept is the body ``render``
    sends, the view's extra headers (``Link``), its ``ETag``, the route's scope and rule. A view
    returns data, or ``(data, headers)``.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            cache = get_engine().read_cache()
            key = cache_key(request.environ)
            answer = cache.get(key)
            if answer is None:
                token = cache.token()  # before the engine is asked: see MetadataCache.put
                result = view(**kwargs)
                data, headers = result if isinstance(result, tuple) else (result, {})
                rule = request.url_rule.rule
                scope = required_scope(current_app, rule, "GET")
                answer = CachedAnswer.make(
                    scope, rule, json_body(data, schema), tuple(headers.items())
                )
                cache.put(key, token, answer)
            return cached_response(answer)

        return wrapper

    return decorate


def cached_response(answer: CachedAnswer) -> Response:
    """``answer`` as a Flask response: 304 when the request's ``If-None-Match`` names it."""
    if etag_matches(request.headers.get("If-None-Match", ""), answer.etag):
        response = current_app.response_class(status=304)
    else:
        response = json_response(answer.body)
        response.headers.extend(answer.headers)
    response.headers["ETag"] = answer.etag
    return response


class CachedReads:
    """WSGI middleware answering cached reads; see the module docstring."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.services = services(app)  # built before this front is put in place
        self.wsgi_app = wsgi_app
        # flask-cors words the CORS headers; with origins configured, Flask answers for them.
        self.cors = bool(app.config.get("BERTH_CORS_ORIGINS"))

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET" and not (self.cors and "HTTP_ORIGIN" in environ):
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
        record = RequestRecord.begin(environ, started)
        if etag_matches(environ.get("HTTP_IF_NONE_MATCH", ""), answer.etag):
            body, status = b"", 304
            start_response(
                "304 Not Modified",
                [("ETag", answer.etag), ("X-Request-Id", record.request_id)],
            )
        else:
            body, status = answer.body, 200
            start_response(
                "200 OK",
                [
                    ("Content-Type", JSON_MIME),
                    ("Content-Length", str(len(body))),
                    ("ETag", answer.etag),
                    *answer.headers,
                    ("X-Request-Id", record.request_id),
                ],
            )
        record.answered(answer.route, status, principal.name)
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
