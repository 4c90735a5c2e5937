"""``Idempotency-Key`` on the POSTs that start jobs (pull, push, load, distributions).

A script that retries a POST whose answer it lost sends the same key again and gets the job
the first one started (same ``Location``) instead of a second push or distribution. The key is
the token's: the same key from another token is another key. It names one request, told by its
fingerprint (method, path, query string and body); the same key with another fingerprint is 422
IDEMPOTENCY_KEY_REUSED. Keys live in the job store as long as their jobs (``app.jobs.idempotency``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request

from app.errors import ValidationFailed
from app.http.accessors import services
from app.jobs.idempotency import IdempotencyKeys

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as the IETF draft's examples

IDEMPOTENCY_HEADER = {
    HEADER: {
        "schema": {"type": "string", "maxLength": 255},
        "description": "Any unique string (a UUID): a retry with the same key and the same "
        "request gets the job the first one started (same `Location`, nothing started again); "
        "the same key with another request is 422 IDEMPOTENCY_KEY_REUSED. Kept as long as the "
        "job is kept (BERTH_JOB_RETENTION_SECONDS); one token's keys are its own.",
    }
}


def submit_once(
    submit: Callable[[], dict[str, Any]], body_sha256: str | None = None
) -> tuple[dict[str, Any], bool]:
    """``submit()``'s job, once per ``Idempotency-Key``; True when this call started it.

    ``body_sha256`` is the digest of a body already consumed (a spooled upload); otherwise the
    body is the JSON body the request's schema loaded (none: ``null``).
    """
    key = request.headers.get(HEADER)
    if key is None:
        return submit(), True
    if not _KEY.match(key):
        raise ValidationFailed(
            f"{HEADER} must be 1 to 255 visible ASCII characters.", errors={HEADER: ["invalid"]}
        )
    if body_sha256 is None:  # the JSON body as parsed: spacing and key order do not count
        sent = json.dumps(g.get("json_body"), sort_keys=True, separators=(",", ":"))
        body_sha256 = hashlib.sha256(sent.encode()).hexdigest()
    query = request.query_string.decode("latin-1")
    asked = "\n".join((request.method, request.path, query, body_sha256))
    fingerprint = hashlib.sha256(asked.encode()).hexdigest()
    principal = g.get("principal")
    owner = principal.name if principal is not None else "anonymous"
    return _keys().submit_once(owner, key, fingerprint, submit)


def _keys() -> IdempotencyKeys:
    keys = current_app.extensions.get("berth.idempotency")
    if keys is None:
        keys = current_app.extensions["berth.idempotency"] = IdempotencyKeys(services().jobs.store)
    return keys
