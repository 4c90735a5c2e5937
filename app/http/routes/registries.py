"""Private registries, read through their v2 API: ``/v1/registries/{registry}/...``.

``{registry}`` is ``host`` or ``host:port``, and must pass the outbound policy (public, or
listed in ``BERTH_ALLOWED_REGISTRIES``) before anything is sent. Berth speaks HTTPS to it, plain
HTTP only for loopback hosts and those in ``BERTH_INSECURE_REGISTRIES``. Credentials come from
``X-Registry-Auth``, else from ``BERTH_REGISTRY_AUTH_FILE``; Basic and Bearer-token registries
(distribution, Harbor, GitLab, Docker Hub) are both understood.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, current_app, request

from app.domain.registry_auth import HEADER as AUTH_HEADER
from app.errors import PROBLEM_MIME
from app.http.accessors import outbound_policy
from app.http.operation import operation
from app.http.schemas import registries as schemas
from app.registry.client import RegistryClient, TokenCache, validate_registry
from app.registry.credentials import resolve_auth
from app.registry.paging import page_link
from app.services import registries as service

bp = Blueprint("registries", __name__)

REGISTRY_AUTH_HEADER = {
    AUTH_HEADER: {
        "schema": {"type": "string"},
        "description": "Registry credentials for this call: base64url of JSON "
        '`{"username", "password", "serveraddress"}` or `{"identitytoken", "serveraddress"}` '
        "(the engine's format). Wins over credentials stored in BERTH_REGISTRY_AUTH_FILE. "
        "Never logged or stored.",
    }
}
LINK_HEADER = {
    "Link": {
        "schema": {"type": "string"},
        "description": 'The next page, `<path>; rel="next"` (absent on the last page).',
    }
}
PATH = {
    "registry": "Registry `host` or `host:port`, e.g. `registry.example.com:5000`.",
    "name": "Repository name inside the registry, e.g. `team/app`.",
}
ERRORS = (400, 403, 404, 502)
REGISTRY_RESPONSES = {
    403: {
        "description": "The token lacks the scope (FORBIDDEN), the outbound policy does not "
        "allow the registry or its token realm (REGISTRY_NOT_ALLOWED), or the registry wants "
        "credentials or refused them (REGISTRY_AUTH_FAILED).",
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    },
    502: {
        "description": "The registry does not answer (REGISTRY_UNREACHABLE) or failed "
        "otherwise (REGISTRY_ERROR, with its message).",
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    },
}


def token_cache() -> TokenCache:
    """Bearer tokens shared by this process's registry calls."""
    return current_app.extensions.setdefault("berth.registry_tokens", TokenCache())


def registry_client(
    registry: str,
    auth: dict[str, str] | None = None,
    *,
    resolve: bool = True,
    timeout: float | None = None,
) -> RegistryClient:
    """A v2 client for ``registry`` with the request's (else the stored) credentials.

    ``resolve=False`` uses ``auth`` as given (already resolved by the caller). A registry the
    outbound policy refuses is a 403 REGISTRY_NOT_ALLOWED before any connection.
    """
    registry = validate_registry(registry)
    outbound_policy().check(registry)
    if resolve:
        auth = resolve_auth(registry, request.headers.get(AUTH_HEADER))
    config = current_app.config
    return RegistryClient(
        registry,
        auth,
        insecure=config["BERTH_INSECURE_REGISTRIES"],
        timeout=timeout or config["BERTH_REGISTRY_TIMEOUT"],
        tokens=token_cache(),
        policy=outbound_policy(),
    )


def _next(path: str, params: dict, last: str | None) -> tuple[str | None, dict[str, str]]:
    if last is None:
        return None, {}
    link = page_link(path, {**params, "last": last})
    return link, {"Link": f'<{link}>; rel="next"'}


@bp.get("/registries/<registry>/repositories")
@operation(
    tags=["registries"],
    query=schemas.repository_query,
    response=schemas.repository_page,
    errors=ERRORS,
    engine=False,
    path_params=PATH,
    headers=REGISTRY_AUTH_HEADER,
    response_headers=LINK_HEADER,
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
    path = f"/v1/registries/{quote(client.registry, safe=':[]')}/repositories"
    link, headers = _next(path, {"q": query.get("q"), "n": query["n"]}, page.next_last)
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
    response_headers=LINK_HEADER,
    extra_responses=REGISTRY_RESPONSES,
)
def list_tags(registry, name, query):
    """List a repository's tags with the digest the registry serves for each."""
    client = registry_client(registry)
    with client:
        page = service.list_tags(client, name, n=query["n"], last=query.get("last"))
    path = (
        f"/v1/registries/{quote(client.registry, safe=':[]')}/repositories/"
        f"{quote(name, safe='/')}/tags"
    )
    link, headers = _next(path, {"n": query["n"]}, page["next_last"])
    body = {
        "registry": client.registry,
        "repository": page["repository"],
        "tags": page["tags"],
        "next": link,
    }
    return body, 200, headers
