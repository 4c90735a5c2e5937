"""The audit trail, for admins."""

from __future__ import annotations

from flask import Blueprint

from app.api.auditing import audit_log
from app.api.operation import operation
from app.schemas import audit as schemas

bp = Blueprint("audit", __name__)


@bp.get("/audit")
@operation(
    scope="admin",
    tags=["operations"],
    query=schemas.audit_query,
    response=schemas.audit_list,
    engine=False,
)
def list_audit(query):
    """Audit records of mutating calls (commit, pull, tag, delete, prune, load, import, push).

    Oldest first; at most `limit` of the newest matching records. Records hold the token's
    name, never a token or credential.
    """
    records = audit_log().query(query.get("since"), query.get("operation"), query["limit"])
    return {"records": records}
