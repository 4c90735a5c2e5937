"""Every route × method → the scope it needs and how a token's engine globs apply: one table.

The before-request check (``app.http.auth``), the OpenAPI document (``app.http.openapi``) and
the README's scope table (``scripts/scope_table.py``) all read ``ROUTES``; a view declares no scope
of its own. A route missing here is refused (403 ROUTE_CLOSED), and a test walks the URL map against
this table both ways. ``HEAD`` is checked as the ``GET`` it mirrors.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.http.auth import ANY_TOKEN, PUBLIC
from app.http.engine_api.rules import PREFIX, engine_api_routes

# How a token's ``engines`` globs apply to a route.
QUERY = "query"  # the engine ``?engine=`` names must match (else 403 ENGINE_FORBIDDEN)
BODY = "body"  # every engine the body names (source and targets) must match
FILTERED = "filtered"  # only records of the token's engines are shown, others do not exist
DEFAULT = "default"  # the default engine only; no ``?engine=``
NONE = "none"  # no engine is involved
PATH = "path"  # the engine named in the path (``/engines/{engine}/``) must match

ENGINE_RULES = {
    QUERY: "`?engine=` must match",
    BODY: "every engine named must match",
    FILTERED: "shows only its engines",
    DEFAULT: "default engine only",
    NONE: "no engine",
    PATH: "`{engine}` must match",
}


@dataclass(frozen=True)
class Route:
    """What one route × method needs: a scope (or PUBLIC, or ANY_TOKEN) and its engine rule.

    ``public_if`` names a boolean setting that makes the route public when true. ``long``: it may
    hold its thread for long, waiting on a client's bytes, a registry or the engine's slow work
    (the worker runs such requests on threads of their own: ``app.http.long_requests``).
    """

    scope: str
    engines: str
    exposes: str
    public_if: str | None = None
    long: bool = False


_IMAGE = "/v1/images/<path:ref>"
_DOCS = "the API documentation"

ROUTES: dict[tuple[str, str], Route] = {
    ("/v1/health", "GET"): Route(PUBLIC, NONE, "liveness"),
    ("/v1/ready", "GET"): Route(PUBLIC, DEFAULT, "the default engine's readiness"),
    ("/openapi.json", "GET"): Route(PUBLIC, NONE, _DOCS),
    ("/apidocs/", "GET"): Route(PUBLIC, NONE, _DOCS),
    ("/apidocs/index.html", "GET"): Route(PUBLIC, NONE, _DOCS),
    ("/flasgger_static/<path:filename>", "GET"): Route(PUBLIC, NONE, _DOCS),
    ("/oauth2-redirect.html", "GET"): Route(PUBLIC, NONE, _DOCS),
    ("/ui/", "GET"): Route(PUBLIC, NONE, "the portal's static files"),
    ("/ui/<path:filename>", "GET"): Route(PUBLIC, NONE, "the portal's static files"),
    ("/metrics", "GET"): Route(
        "metrics", NONE, "request and job counters", public_if="BERTH_METRICS_PUBLIC"
    ),
    ("/v1/engines", "GET"): Route("read", FILTERED, "engine names, versions, readiness"),
    ("/v1/images", "GET"): Route("read", QUERY, "image metadata"),
    ("/v1/images/pull", "POST"): Route("write", QUERY, "pull from a registry", long=True),
    ("/v1/images/import", "POST"): Route("write", QUERY, "create an image from a tar", long=True),
    ("/v1/images/prune", "POST"): Route("delete", QUERY, "remove unused images", long=True),
    (_IMAGE, "GET"): Route("read", QUERY, "image metadata"),
    (_IMAGE, "DELETE"): Route("delete", QUERY, "remove an image or a name"),
    (_IMAGE + "/history", "GET"): Route("read", QUERY, "image metadata"),
    (_IMAGE + "/layers", "GET"): Route("read", QUERY, "image metadata"),
    (_IMAGE + "/archive", "GET"): Route("read", QUERY, "image archives", long=True),
    (_IMAGE + "/tags", "POST"): Route("write", QUERY, "add or move a local tag"),
    (_IMAGE + "/push", "POST"): Route("push", QUERY, "send an image to a registry", long=True),
    ("/v1/archives", "GET"): Route("read", QUERY, "image archives", long=True),
    ("/v1/archives", "POST"): Route("write", QUERY, "load images (adds or moves tags)", long=True),
    ("/v1/usage", "GET"): Route("read", QUERY, "image metadata"),
    ("/v1/search", "GET"): Route("read", QUERY, "registry search results", long=True),
    ("/v1/containers", "GET"): Route("read", QUERY, "container names, images, states"),
    ("/v1/containers/<container>/export", "GET"): Route(
        "export", QUERY, "a container's whole filesystem", long=True
    ),
    ("/v1/containers/<container>/commit", "POST"): Route(
        "write", QUERY, "a new image from a container", long=True
    ),
    ("/v1/registries/<registry>/repositories", "GET"): Route(
        "read", NONE, "a registry's repositories", long=True
    ),
    ("/v1/registries/<registry>/repositories/<path:name>/tags", "GET"): Route(
        "read", NONE, "a registry's tags", long=True
    ),
    ("/v1/distributions", "POST"): Route("push", BODY, "send an image to other engines", long=True),
    ("/v1/distributions/<id>", "GET"): Route(
        ANY_TOKEN, FILTERED, "its own distributions", long=True
    ),
    ("/v1/jobs", "GET"): Route(ANY_TOKEN, FILTERED, "its own jobs"),
    ("/v1/jobs/<id>", "GET"): Route(ANY_TOKEN, FILTERED, "its own jobs", long=True),
    ("/v1/jobs/<id>", "DELETE"): Route(ANY_TOKEN, FILTERED, "cancel its own jobs"),
    ("/v1/jobs/<id>/events", "GET"): Route(ANY_TOKEN, FILTERED, "its own jobs", long=True),
    ("/v1/audit", "GET"): Route("admin", FILTERED, "the audit log"),
    ("/v1/events", "GET"): Route("read", FILTERED, "image events, its own jobs' states", long=True),
    ("/v1/token", "GET"): Route(ANY_TOKEN, NONE, "its own name, scopes and engines"),
}
# Docker's own clients through Berth (app.http.engine_api): the Engine API calls it lets through.
ROUTES.update(
    {
        key: Route(call.scope, PATH, call.exposes, long=call.long)
        for key, call in engine_api_routes().items()
    }
)


def route_key(rule: str, method: str) -> tuple[str, str]:
    """The table's key for ``rule`` called with ``method`` (``HEAD`` is its ``GET``)."""
    return rule, "GET" if method == "HEAD" else method


def scope_table() -> str:
    """The table as Markdown, for the README (``scripts/scope_table.py`` prints it)."""
    lines = [
        "| Method | Route | Scope | Token's `engines` | Exposes |",
        "|---|---|---|---|---|",
    ]
    for (rule, method), route in ROUTES.items():
        if rule.startswith(PREFIX):  # the Engine API's rows have a table of their own
            continue
        path = rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        scope = {PUBLIC: "public", ANY_TOKEN: "any token"}.get(route.scope, f"`{route.scope}`")
        if route.public_if:
            scope += f" (public if `{route.public_if}`)"
        engines = ENGINE_RULES[route.engines]
        lines.append(f"| {method} | `{path}` | {scope} | {engines} | {route.exposes} |")
    return "\n".join(lines) + "\n"
