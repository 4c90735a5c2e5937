"""The audit trail, for admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, g

from app.domain.times import rfc3339
from app.errors import ValidationFailed
from app.http.accessors import services
from app.http.operation import operation
from app.http.schemas import audit as schemas
from app.observability.audit import CursorExpired

bp = Blueprint("audit", __name__)

SINCE_SLACK = timedelta(seconds=60)


@bp.get("/audit")
@operation(
    tags=["operations"],
    query=schemas.audit_query,
    response=schemas.audit_list,
    engine=False,
)
def list_audit(query):
    """Audit records of mutating calls, refused ones included, newest first, a page at a time.

    At most `limit` records; `next` is the cursor of the following (older) page, to pass as
    `before`, and null after the last one. Paging continues into rotated files. Only records of
    engines the token's `engines` globs allow are listed; records naming no engine (a refused
    call to a route without one, an unknown route) only for tokens with the `*` glob. Records
    hold the token's name, never a token or credential.
    """
    principal = g.principal
    operation_name = query.get("operation")
    since = rfc3339(query["since"]) if query.get("since") else None
    # Workers append in about time order, not exactly: read a little past `since`.
    horizon = rfc3339(query["since"] - SINCE_SLACK) if query.get("since") else None

    def accept(record: dict[str, Any]) -> bool:
        return (
            (operation_name is None or record.get("operation") == operation_name)
            and (since is None or str(record.get("time", "")) >= since)
            and principal.allows_engines(record.get("engines") or [record.get("engine")])
        )

    def stop(record: dict[str, Any]) -> bool:
        return horizon is not None and str(record.get("time", "")) < horizon

    try:
        records, cursor = services().audit.page(query["limit"], query.get("before"), accept, stop)
    except CursorExpired as e:
        raise ValidationFailed(
            f"This cursor cannot be used: {e}.", errors={"before": [str(e)]}
        ) from None
    return {"records": records, "next": cursor}
