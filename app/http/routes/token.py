"""The calling token as Berth sees it, so a client (the portal at /ui/) offers only what it may."""

from __future__ import annotations

from flask import Blueprint, g

from app.http.accessors import services
from app.http.operation import operation
from app.http.schemas import token as schemas

bp = Blueprint("token", __name__)


@bp.get("/token")
@operation(tags=["system"], response=schemas.token, engine=False)
def describe_token():
    """Describe the calling token: its name, scopes and engines.

    Any valid token may ask. `usable_engines` lists the configured engines the token's globs
    match (in the pool's order), so a client can offer an engine picker without a `read` scope.
    """
    principal = g.principal
    pool = services().engines
    usable = [name for name in pool.names if principal.allows_engine(name)]
    return {
        "name": principal.name,
        "scopes": sorted(principal.scopes),
        "engines": list(principal.engines),
        "usable_engines": usable,
        "default_engine": pool.default if pool.default in usable else None,
    }
