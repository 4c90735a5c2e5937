"""Private registries, read through their v2 API: ``/v1/registries/{registry}/...``.

``{registry}`` is ``host`` or ``host:port``, and must pass the outbound policy (public, or
listed in ``BERTH_ALLOWED_REGISTRIES``) before anything is sent. Berth speaks HTTPS to it, plain
HTTP only for loopback hosts and those in ``BERTH_INSECURE_REGISTRIES``. Credentials come from
``X-Registry-Auth``, else from ``BERTH_REGISTRY_AUTH_FILE``; Basic and Bearer-token registries
(distribution, Harbor, GitLab, Docker Hub) are both understood.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint

from app.http.operation import operation
from app.http.paths import LINK_NEXT_DOC
from app.http.registry_access import REGISTRY_AUTH_HEADER, REGISTRY_RESPONSES, registry_client
from app.http.schemas import registries as schemas
from app.registry.paging import next_page
from app.services import registries as service

bp = Blueprint("registries", __name__)

PATH = {
    "registry": "Registry `host` or `host:port`, e.g. `registry.example.com:5000`.",
    "name": "Repository name inside the registry, e.g. `team/app`.",
}
ERRORS = (400, 403, 404, 502)


def _repositories_path(registry: str) -> str:
    """The catalog's own path, base of the ``next`` links (``[v6]:port`` kept readable)."""
    return f"/v1/registries/{quote(registry, safe=':[]')}/repositories"


@bp.get("/registries/<registry>/repositories")
@operation(
    tags=["registries"],
    query=schemas.repository_query,
    response=schemas.repository_page,
    errors=ERRORS,
    engine=False,
    path_params=PATH,
    headers=REGISTRY_AUTH_HEADER,
    response_headers=LINK_NEXT_DOC,
    extra_responses=REGISTRY_RESPONSES,
)
def list_repositories(registry, query):
    """List a registry's repositories (its catalog), filtered and paginated.

    `q` filters by substring or glob; Berth reads as many catalog pages as the filter needs, so
    a page holds `n` names unless the catalog ends (or, for a very sparse filter, Berth stops
    after 50 upstream pages: follow `next` until it is null).
    """
    client = registry_client(registry)
    with client:
        page = service.list_repositories(
            client, q=query.get("q"), n=query["n"], last=query.get("last")
        )
    path = _repositories_path(client.registry)
    link, headers = next_page(path, {"q": query.get("q"), "n": query["n"]}, page.next_last)
    body = {"registry": client.registry, "repositories": page.items, "next": link}
    return body, 200, headers


@bp.get("/registries/<registry>/repositories/<path:name>/tags")
@operation(
    tags=["registries"],
    query=schemas.tag_query,
    response=schemas.tag_page,
    errors=ERRORS,
    engine=False,
    path_params=PATH,
    headers=REGISTRY_AUTH_HEADER,
    response_headers=LINK_NEXT_DOC,
    extra_responses=REGISTRY_RESPONSES,
)
def list_tags(registry, name, query):
    """List a repository's tags with the digest the registry serves for each."""
    client = registry_client(registry)
    with client:
        page = service.list_tags(client, name, n=query["n"], last=query.get("last"))
    path = f"{_repositories_path(client.registry)}/{quote(name, safe='/')}/tags"
    link, headers = next_page(path, {"n": query["n"]}, page["next_last"])
    body = {
        "registry": client.registry,
        "repository": page["repository"],
        "tags": page["tags"],
        "next": link,
    }
    return body, 200, headers
