"""Live events: ``GET /v1/events``, as Server-Sent Events or as NDJSON.

The stream tells image events of the engines the token may use and the state changes of the
jobs it may see, from the process's ``EventHub`` (``app.services.events``), which follows each
engine once whatever the number of streams. An open stream holds a request thread for as long
as the client listens, so each takes one of ``BERTH_MAX_EVENT_STREAMS`` slots of its worker
(the long requests' threads have room for them: ``gunicorn.conf.py``); past them a stream is
refused at once with 503 ``TOO_MANY_EVENT_STREAMS`` and ``Retry-After``, and short requests
keep their own threads. A keep-alive line every ``KEEPALIVE_SECONDS`` finds clients that left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from marshmallow import Schema, fields, validate

from app.domain.ndjson import json_line
from app.errors import EngineNotFound, TooManyEventStreams, ValidationFailed
from app.http.accessors import services
from app.http.auth import Principal, check_engine
from app.http.operation import operation
from app.http.streaming import NDJSON_MIME
from app.services.events import JOB, TYPES, EventHub

bp = Blueprint("events", __name__)

SSE_MIME = "text/event-stream"
KEEPALIVE_SECONDS = 15.0
RETRY_AFTER_SECONDS = 5


class EventsQuerySchema(Schema):
    engine = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        metadata={
            "description": "Only these engines (repeat for several); default: every "
            "engine the token may use."
        },
    )
    type = fields.List(
        fields.String(validate=validate.OneOf(TYPES)),
        metadata={"description": "Only these kinds of event: `image`, `job` (repeat for both)."},
    )


events_query = EventsQuerySchema()

EVENT_DESCRIPTION = (
    "One event per message: `{id, type, action, engine, time, ...}`. Image events "
    "(`type: image`; action `pull`, `tag`, `untag`, `delete`, `load`, `import`, `push`, `save`, "
    "`commit`, ...) add `image` (id), `name` and the engine's `attributes`; job events "
    "(`type: job`; action the new state) add `job: {id, kind, target}`. `id` is the event's "
    "time in nanoseconds: send the last one seen as `Last-Event-ID` to resume."
)


class EventStreams:
    """The process's hub and the ``capacity`` streams it may serve at once."""

    def __init__(self, hub: EventHub, capacity: int) -> None:
        self.hub = hub
        self.capacity = capacity
        self._free = threading.BoundedSemaphore(capacity) if capacity else None

    def take(self) -> Callable[[], None]:
        """A stream slot, as the function that gives it back (once); 503 when none is free."""
        if self._free is None or not self._free.acquire(blocking=False):
            raise TooManyEventStreams(
                f"This worker already serves {self.capacity} event streams "
                "(BERTH_MAX_EVENT_STREAMS); try again later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        lock = threading.Lock()
        given: list[bool] = []

        def release() -> None:
            with lock:
                if given:
                    return
                given.append(True)
            self._free.release()  # type: ignore[union-attr]

        return release


def init_events(app: Flask, hub: EventHub) -> EventStreams:
    return EventStreams(hub, app.config["BERTH_MAX_EVENT_STREAMS"])


class _Stream:
    """The response body: events as they come; gives the slot back however it ends."""

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], None]) -> None:
        self._chunks = chunks
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        finally:
            self._release()

    def close(self) -> None:
        try:
            self._chunks.close()  # type: ignore[attr-defined]
        finally:
            self._release()


@bp.get("/events")
@operation(
    tags=["system"],
    query=events_query,
    engine=False,
    errors=(403, 404, 503),
    headers={
        "Last-Event-ID": {
            "description": "Resume after this event: the buffered events after it come first.",
            "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
        }
    },
    response_content={
        SSE_MIME: {"schema": {"type": "string", "description": EVENT_DESCRIPTION}},
        NDJSON_MIME: {"schema": {"type": "string", "description": EVENT_DESCRIPTION}},
    },
)
def follow_events(query):
    """Follow image events and job state changes as they happen (SSE or NDJSON)."""
    principal: Principal = g.principal
    engines = _engines(principal, query.get("engine"))
    types = set(query.get("type") or TYPES)
    last = request.headers.get("Last-Event-ID") or None
    if last is not None and not (last.isdigit() and len(last) <= 20):
        raise ValidationFailed(
            "Last-Event-ID must be the id of an event of this stream.",
            errors={"Last-Event-ID": ["Not an event id."]},
        )
    streams: EventStreams = services().events
    release = streams.take()
    try:
        streams.hub.follow(engines)
        position, backlog = streams.hub.start(last)
    except BaseException:
        release()
        raise
    sse = request.accept_mimetypes.best_match([SSE_MIME, NDJSON_MIME]) != NDJSON_MIME

    def shown(event: dict[str, Any]) -> bool:
        return event["type"] in types and _visible(principal, engines, event)

    chunks = _chunks(streams.hub, position, backlog, shown, sse)
    response = Response(_Stream(chunks, release), mimetype=SSE_MIME if sse else NDJSON_MIME)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not hold events back
    return response


def _engines(principal: Principal, named: list[str] | None) -> list[str]:
    pool = services().engines
    if not named:
        return [name for name in pool.names if principal.allows_engine(name)]
    for name in named:
        if name not in pool:
            raise EngineNotFound(f"No engine named '{name}' is configured.", engine=name)
        check_engine(principal, name)
    return list(dict.fromkeys(named))


def _visible(principal: Principal, engines: list[str], event: dict[str, Any]) -> bool:
    if event["type"] != JOB:
        return event["engine"] in engines
    if not (principal.is_admin or event.get("owner") == principal.name):
        return False
    touched = event.get("engines") or []
    if not principal.allows_engines(touched):
        return False
    return not touched or any(name in engines for name in touched)


def _public(event: dict[str, Any]) -> dict[str, Any]:
    """What the client is told: the hub's event without what served only to filter it."""
    return {k: v for k, v in event.items() if k not in ("owner", "engines")}


def _chunks(
    hub: EventHub,
    position: int,
    backlog: Iterable[dict[str, Any]],
    shown: Callable[[dict[str, Any]], bool],
    sse: bool,
) -> Iterator[bytes]:
    def encode(event: dict[str, Any]) -> bytes:
        line = json_line(_public(event))
        if sse:
            return b"id: " + event["id"].encode() + b"\ndata: " + line + b"\n"
        return line

    yield b"retry: 2000\n\n" if sse else b"\n"  # sends the headers now
    for event in backlog:
        if shown(event):
            yield encode(event)
    said = time.monotonic()
    while not hub.closed:
        position, fresh = hub.wait(position, KEEPALIVE_SECONDS)
        chosen = [encode(event) for event in fresh if shown(event)]
        if chosen:
            yield b"".join(chosen)
        elif time.monotonic() - said >= KEEPALIVE_SECONDS:
            yield b": keep-alive\n\n" if sse else b"\n"
        else:
            continue
        said = time.monotonic()
