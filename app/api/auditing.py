"""Request-side audit hooks: ``@operation`` opens a record, the outcome closes it, once.

Streamed responses (NDJSON progress) close theirs from ``app.api.streaming`` when the stream
ends, with the real outcome.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from app.audit import AuditLog, now, outcome

_TARGET_KEYS = ("ref", "container", "id")
_BODY_TARGET_KEYS = ("reference", "target", "repository", "image")


def audit_log() -> AuditLog:
    return current_app.extensions["berth.audit"]


def begin_audit(operation: str, kwargs: dict[str, Any]) -> None:
    target = next((str(kwargs[k]) for k in _TARGET_KEYS if kwargs.get(k)), None)
    g.audit = {
        "time": now(),
        "request_id": g.get("request_id"),
        "token": getattr(g.get("principal"), "name", None),
        "operation": operation,
        "method": request.method,
        "path": request.path,
        "engine": None,
        "target": target,
    }


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
    record.update(
        status=status,
        result="success" if status < 400 else "failure",
        image_ids=ids,
        references=refs,
        code=code,
    )
    audit_log().write(record)
