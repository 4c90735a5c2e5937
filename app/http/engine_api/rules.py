"""Which Engine API calls Berth lets through, with the Berth scope each needs.

Every path is served under ``/engines/<engine>/`` with and without the client's ``/v1.NN``
prefix; ``ENGINE_API_ROUTES`` adds both rules of each to the one route table
(``app.http.scopes.ROUTES``), so the before-request check enforces these scopes as it does the
native API's. Anything else under ``/engines/<engine>/`` reaches the catch-all rule and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.http.auth import ANY_TOKEN

PREFIX = "/engines/<engine>"
VERSIONED = PREFIX + "/v<version>"
CATCH_ALL = "<path:rest>"
CATCH_ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


@dataclass(frozen=True)
class EngineCall:
    """One Engine API path (under the prefix) and method; ``handler`` names the view's checks.

    ``long``: it may hold its thread for long (a transfer, a stream, a registry, the engine's slow
    work), as ``app.http.scopes.Route.long``.
    """

    path: str
    method: str
    scope: str
    exposes: str
    handler: str = "plain"
    long: bool = False


_METADATA = "image metadata"
_ARCHIVES = "image archives"

CALLS: tuple[EngineCall, ...] = (
    EngineCall("_ping", "GET", ANY_TOKEN, "the engine's API version", "quick"),
    EngineCall("version", "GET", ANY_TOKEN, "the engine's version", "quick"),
    EngineCall("info", "GET", "read", "the engine's details and counts", "quick"),
    EngineCall("images/json", "GET", "read", _METADATA),
    EngineCall("images/<path:name>/json", "GET", "read", _METADATA, "image"),
    EngineCall("images/<path:name>/history", "GET", "read", _METADATA, "image"),
    EngineCall("images/<path:name>/tag", "POST", "write", "add or move a local tag", "tag"),
    EngineCall("images/<path:name>", "DELETE", "delete", "remove an image or a name", "image"),
    EngineCall("images/prune", "POST", "delete", "remove unused images", long=True),
    EngineCall("images/search", "GET", "read", "registry search results", "search", long=True),
    EngineCall(
        "images/create", "POST", "write", "pull, or import a tar (fromSrc=-)", "create", long=True
    ),
    EngineCall(
        "images/<path:name>/push", "POST", "push", "send an image to a registry", "push", long=True
    ),
    EngineCall("images/get", "GET", "read", _ARCHIVES, "save", long=True),
    EngineCall("images/<path:name>/get", "GET", "read", _ARCHIVES, "save", long=True),
    EngineCall(
        "images/load", "POST", "write", "load images (adds or moves tags)", "load", long=True
    ),
    EngineCall("commit", "POST", "write", "a new image from a container", "commit", long=True),
    EngineCall("containers/json", "GET", "read", "container names, images, states"),
    EngineCall(
        "containers/<container>/json", "GET", "export", "a container's config, env included"
    ),
    EngineCall(
        "containers/<container>/export",
        "GET",
        "export",
        "a container's whole filesystem",
        "export",
        long=True,
    ),
    EngineCall(
        "distribution/<path:name>/json",
        "GET",
        "read",
        "a registry's manifest digest",
        "remote",
        long=True,
    ),
    EngineCall("system/df", "GET", "read", "disk usage of images, containers, volumes"),
    EngineCall("auth", "POST", "read", "check registry credentials", "auth", long=True),
    EngineCall("events", "GET", "read", "image events only", "events", long=True),
)

REFUSED_EXPOSES = "nothing: refused, Berth allows image operations only"


def engine_api_routes() -> dict[tuple[str, str], EngineCall]:
    """(rule, method) → its call for every Engine API rule, versioned or not, and the refusals."""
    table = {}
    for call in CALLS:
        for prefix in (PREFIX, VERSIONED):
            table[(f"{prefix}/{call.path}", call.method)] = call
    for method in CATCH_ALL_METHODS:
        table[(f"{PREFIX}/{CATCH_ALL}", method)] = EngineCall(
            CATCH_ALL, method, ANY_TOKEN, REFUSED_EXPOSES
        )
    return table
