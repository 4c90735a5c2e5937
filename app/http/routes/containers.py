"""Containers, read-only: pick what to commit or export. Berth never creates or runs one."""

from __future__ import annotations

from flask import Blueprint

from app.http.accessors import get_engine
from app.http.operation import operation
from app.http.schemas import containers as schemas

bp = Blueprint("containers", __name__)


@bp.get("/containers")
@operation(
    tags=["lifecycle"],
    query=schemas.container_list_query,
    response=schemas.container_list,
)
def list_containers(query):
    """List containers (`docker ps`; `all=true` as `docker ps -a`)."""
    return {"containers": get_engine().list_containers(all=query["all"])}
