"""Request-side audit hooks: ``@operation`` opens a record, the outcome closes it, once.

Streamed responses (NDJSON progress) close theirs from ``app.http.streaming`` when the stream
ends, with the real outcome. A mutating request refused before its view runs (401, 403 from
the scope check, an unknown route or method) gets its record from an ``after_request`` hook, so
every call that is not a read leaves exactly one record and no read leaves any.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, request

from app.http.accessors import services
from app.http.auth import ANONYMOUS, bearer_token
from app.observability.audit import AuditLog, now, outcome

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TARGET_KEYS = ("ref", "container", "id")
_BODY_TARGET_KEYS = ("reference", "target", "repository", "image")


def init_audit(app: Flask) -> AuditLog:
    """The audit log of this app, and the hook recording refused mutations."""
    app.after_request(_audit_unopened)
    return AuditLog(
        app.config["BERTH_DATA_DIR"],
        max_bytes=app.config.get("BERTH_AUDIT_MAX_BYTES", 0),
        backups=app.config.get("BERTH_AUDIT_BACKUPS", 5),
    )


def audited_method(method: str) -> bool:
    """Every method but the reads leaves an audit record."""
    return method not in READ_METHODS


def _new_record(operation: str | None, token: str | None) -> dict[str, Any]:
    rule = request.url_rule
    return {
        "time": now(),
        "request_id": g.get("request_id"),
        "token": token,
        "operation": operation,
        "method": request.method,
        "path": request.path,
        "route": rule.rule if rule is not None else None,
        "engine": None,
        "target": None,
    }


def begin_audit(operation: str, kwargs: dict[str, Any]) -> None:
    g.audit_opened = True
    g.audit = _new_record(operation, getattr(g.get("principal"), "name", None))
    g.audit["target"] = next((str(kwargs[k]) for k in _TARGET_KEYS if kwargs.get(k)), None)


def note_audit_engines(engines: list[str]) -> None:
    """Name every engine the call touches (a distribution's, a cancelled job's)."""
    record = g.get("audit")
    if record is not None and engines:
        record["engine"] = engines[0]
        record["engines"] = list(engines)


def note_audit_target(kwargs: dict[str, Any]) -> None:
    """Refine the target from the parsed body or query when the path names none."""
    record = g.get("audit")
    if record is None:
        return
    record["engine"] = g.get("engine_name")
    if record["target"] is None:
        for source in (kwargs.get("body") or {}, kwargs.get("query") or {}):
            for key in _BODY_TARGET_KEYS:
                if source.get(key):
                    record["target"] = str(source[key])
                    return


def finish_audit(status: int, payload: Any = None, code: str | None = None) -> None:
    """Write the open record (once) with the call's outcome."""
    record = g.pop("audit", None)
    if record is None:
        return
    ids, refs = outcome(payload.get("result", payload) if isinstance(payload, dict) else payload)
    if record["engine"] is None:  # refused before the engine was chosen (ENGINE_FORBIDDEN...)
        record["engine"] = _requested_engine(current_app.view_functions.get(request.endpoint))
    record.update(
        status=status,
        result="success" if status < 400 else "failure",
        image_ids=ids,
        references=refs,
        code=code,
    )
    services().audit.write(record)


def _audit_unopened(response: Response) -> Response:
    """Record a mutating request that ended before ``@operation`` opened its record."""
    if not audited_method(request.method) or g.get("audit_opened"):
        return response
    principal = g.get("principal")
    if principal is None or principal is ANONYMOUS:
        principal = _caller()
    view = current_app.view_functions.get(request.endpoint or "")
    record = _new_record(getattr(view, "berth_audit", request.endpoint), principal.name)
    record["engine"] = _requested_engine(view)
    body = response.get_json(silent=True) if response.is_json and not response.is_streamed else None
    code = body.get("code") if isinstance(body, dict) else None
    record.update(
        status=response.status_code,
        result="success" if response.status_code < 400 else "failure",
        image_ids=[],
        references=[],
        code=code,
    )
    services().audit.write(record)
    return response


def _caller() -> Any:
    """Who sent the request, when no check named it (a route that does not exist): the
    token's name if the token is valid, else anonymous."""
    token = bearer_token(request.headers.get("Authorization", ""))
    found = services().authorizer.tokens.authenticate(token) if token else None
    return found or ANONYMOUS


def _requested_engine(view: Any) -> str | None:
    """The engine a refused request was aimed at: its ``?engine=``, else the default one, for
    operations on one engine; None for the others."""
    doc = getattr(view, "berth_doc", None)
    if doc is None or not doc.engine:
        return None
    return request.args.get("engine") or services().engines.default
