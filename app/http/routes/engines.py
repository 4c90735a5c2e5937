"""The engines Berth fronts (``BERTH_ENGINES``), as the caller's token may see them."""

from __future__ import annotations

from flask import Blueprint, g

from app.http.accessors import services
from app.http.operation import operation
from app.http.schemas import engines as schemas
from app.services.fleet import probe_engines

bp = Blueprint("engines", __name__)


@bp.get("/engines")
@operation(tags=["engines"], response=schemas.engine_list, engine=False)
def list_engines():
    """List engines with reachability, version and image count.

    Only the engines the token may use are listed (`default` is null when the token may not use
    the default engine); engines are probed in parallel and one that does not answer within 5 s
    is reported unreachable without delaying the others.
    """
    pool = services().engines
    names = [name for name in pool.names if g.principal.allows_engine(name)]
    default = pool.default if pool.default in names else None
    return {"default": default, "engines": probe_engines(pool, names)}
