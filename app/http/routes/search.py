"""Search Docker Hub (or any v1 search index) through the engine, or a private registry's
catalog through its v2 API (what `docker search` cannot do)."""

from __future__ import annotations

from flask import Blueprint

from app.http.accessors import get_engine, services
from app.http.operation import operation
from app.http.registry_access import REGISTRY_AUTH_HEADER, registry_client
from app.http.schemas import search as schemas
from app.registry.addresses import DOCKER_HUB, validate_registry
from app.registry.policy import search_index
from app.services.registries import search_catalog

bp = Blueprint("search", __name__)


@bp.get("/search")
@operation(
    operation_id="search_images",
    tags=["registries"],
    query=schemas.search_query,
    response=schemas.search_results,
    errors=(403, 502),
    headers=REGISTRY_AUTH_HEADER,
)
def search(query):
    """Search images (`docker search`), or a private registry's catalog.

    The engine asks Docker Hub, or the v1 index named by a `host:port/` prefix of `term`
    (which must pass the outbound policy: 403 REGISTRY_NOT_ALLOWED otherwise).
    With `registry=host:port` Berth searches that registry's catalog (v2 API) instead: `term`
    matches names as a substring or a glob, results have the same shape with the registry in
    `name` (`host:port/team/app`, pullable as is), no stars and no description. Credentials
    for it: `X-Registry-Auth`, else BERTH_REGISTRY_AUTH_FILE.
    """
    if query.get("registry"):
        with registry_client(query["registry"]) as client:
            results = search_catalog(
                client, query["term"], query["limit"], query.get("official"), query.get("min_stars")
            )
        return {"results": results}
    # The engine would contact the index (Docker Hub's without one): the policy decides first.
    services().outbound.check(validate_registry(search_index(query["term"]) or DOCKER_HUB))
    results = get_engine().search(
        query["term"], query["limit"], query.get("official"), query.get("min_stars")
    )
    return {"results": results}
