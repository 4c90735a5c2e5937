"""CORS for the browser pages of ``BERTH_CORS_ORIGINS`` (exact origins; none by default).

flask-cors words every CORS header, on answers and errors alike. Preflights (``OPTIONS`` with
``Access-Control-Request-Method``) are answered 204 before the token check (a browser sends
them without ``Authorization``), and only for a listed origin and a route that takes the method
asked; any other ``OPTIONS`` stays what it was (405). Pages may send ``Authorization`` and read
the headers clients act on (``EXPOSED``). ``app.http.cached_reads`` leaves every request with an
``Origin`` to Flask when origins are configured, so its answers carry the same headers.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-None-Match",
    "Last-Event-ID",
    "Prefer",
    "Idempotency-Key",
    "X-Registry-Auth",
]
EXPOSED = ["Location", "Link", "ETag", "X-Request-Id", "Retry-After"]
METHODS = ["GET", "HEAD", "POST", "DELETE"]
MAX_AGE_SECONDS = 600


def init_cors(app: Flask) -> None:
    """Answer the configured origins' pages; do nothing without ``BERTH_CORS_ORIGINS``."""
    origins = list(app.config.get("BERTH_CORS_ORIGINS") or [])
    if not origins:
        return
    CORS(
        app,
        origins=origins,  # plain strings, compared exactly (config refuses patterns)
        methods=METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED,
        max_age=MAX_AGE_SECONDS,
        supports_credentials=False,  # bearer tokens, never cookies
        always_send=False,  # only answers to a request with an Origin carry CORS headers
        automatic_options=False,
        vary_header=True,
    )
    allowed = set(origins)

    def preflight() -> Response | None:
        if request.method != "OPTIONS" or request.headers.get("Origin") not in allowed:
            return None
        method = request.headers.get("Access-Control-Request-Method", "").upper()
        if method not in METHODS:
            return None
        try:
            app.url_map.bind_to_environ(request.environ).match(method=method)
        except HTTPException:
            return None
        return app.response_class(status=204)

    # create_app installs this before the token check (``init_auth``).
    app.before_request(preflight)
