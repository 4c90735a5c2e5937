"""Prometheus metrics: requests, latency, engine calls, bytes streamed, jobs by state.

Metrics live in one process-wide registry. Under gunicorn, ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` so that every worker's samples are aggregated at scrape time.
No flask here: the WSGI middleware counts body bytes; ``app.http.access_log`` calls
``observe_request`` for both request paths. ``JobsCollector`` reads the job store (shared by
every worker) at scrape time, so ``berth_jobs`` is exported once, whichever worker is scraped.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "berth_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "berth_http_request_duration_seconds",
    "Time to the response headers (streams excluded)",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
ENGINE_LATENCY = Histogram(
    "berth_engine_request_duration_seconds",
    "Docker engine API calls (to the response headers)",
    ["method", "endpoint"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STREAM_BYTES = Counter(
    "berth_stream_bytes_total",
    "Body bytes received (in) and sent (out)",
    ["direction"],
    registry=REGISTRY,
)

# Engine paths → low-cardinality templates: /v1.41/images/busybox:1/json → /images/{name}/json
_VERSION_PREFIX = re.compile(r"^/v[0-9.]+")
_RESOURCE = re.compile(
    r"^/(images|containers|distribution)/(?!json$|create$|load$|get$|search$|"
    r"prune$)(.+?)(/(json|history|tag|push|get|export|commit|wait|start|kill|"
    r"archive)?)?$"
)


def engine_endpoint(path: str) -> str:
    path = _VERSION_PREFIX.sub("", path.split("?", 1)[0])
    match = _RESOURCE.match(path)
    if match:
        return f"/{match.group(1)}/{{name}}{match.group(3) or ''}"
    return path


def observe_engine_call(method: str, path: str, seconds: float) -> None:
    ENGINE_LATENCY.labels(method, engine_endpoint(path)).observe(seconds)


_STREAM_OUT = STREAM_BYTES.labels("out")


def observe_stream_out(size: int) -> None:
    """Body bytes sent by a response that does not pass ``ByteCountingMiddleware``."""
    _STREAM_OUT.inc(size)


# labels() takes a lock and builds a key on every call; a request only needs the two children of
# its (method, route, status), found here with one dict read. Few routes, so the dict stays small.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str, status: int, seconds: float | None) -> None:
    if method not in _METHODS:  # any token is a method to HTTP; keep the label set bounded
        method = "OTHER"
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        children = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
        )
        _request_children[key] = children
    children[0].inc()
    if seconds is not None:
        children[1].observe(seconds)


class JobsCollector:
    """Jobs by state, read from the shared job store at scrape time."""

    def __init__(self, count_by_state: Callable[[], dict[str, int]]) -> None:
        self._count = count_by_state

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("berth_jobs", "Jobs by state", labels=["state"])
        for state, count in sorted(self._count().items()):
            family.add_metric([state], count)
        yield family


def render(extra_collectors: Iterable[Any] = ()) -> tuple[bytes, str]:
    """The exposition text: every worker's samples when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    for collector in extra_collectors:
        extra = CollectorRegistry()
        extra.register(collector)
        text += generate_latest(extra)
    return text, CONTENT_TYPE_LATEST


class _CountingInput:
    """wsgi.input wrapper counting the bytes the app reads."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        STREAM_BYTES.labels("in").inc(len(data))
        return data

    def readline(self, *args: Any) -> bytes:
        data = self._stream.readline(*args)
        STREAM_BYTES.labels("in").inc(len(data))
        return data

    def __iter__(self):
        for chunk in self._stream:
            STREAM_BYTES.labels("in").inc(len(chunk))
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _CountingBody:
    """Response iterable wrapper counting bytes sent; forwards close() (ends engine streams)."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = body

    def __iter__(self):
        out = STREAM_BYTES.labels("out")
        for chunk in self._body:
            out.inc(len(chunk))
            yield chunk

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class ByteCountingMiddleware:
    """WSGI middleware that counts request and response body bytes."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _CountingInput(environ["wsgi.input"])
        return _CountingBody(self.app(environ, start_response))


def monotonic() -> float:
    return time.perf_counter()
