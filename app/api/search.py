"""Search Docker Hub (or any v1 search index) through the engine."""

from __future__ import annotations

from flask import Blueprint

from app.api.operation import operation
from app.extensions import get_engine
from app.schemas import search as schemas

bp = Blueprint("search", __name__)


@bp.get("/search")
@operation(
    scope="read",
    tags=["search"],
    query=schemas.search_query,
    response=schemas.search_results,
    errors=(502,),
)
def search(query):
    """Search images (`docker search`).

    The engine asks Docker Hub, or the v1 index named by a `host:port/` prefix of `term`.
    """
    results = get_engine().search(
        query["term"], query["limit"], query.get("official"), query.get("min_stars")
    )
    return {"results": results}
