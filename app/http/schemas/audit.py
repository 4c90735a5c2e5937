"""Audit trail schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.http.schemas.common import Timestamp


class AuditQuerySchema(Schema):
    since = fields.AwareDateTime(
        metadata={"description": "RFC 3339 time with offset, e.g. 2026-01-31T12:00:00Z."}
    )
    operation = fields.String(
        validate=validate.Length(max=64),
        metadata={"description": "Only this operation (e.g. tag_image, delete_image, push)."},
    )
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10000))
    before = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "The `next` cursor of the previous page: records older than it."},
    )


class AuditRecordSchema(Schema):
    time = Timestamp()
    request_id = fields.String()
    token = fields.String(metadata={"description": "The token's name (never the token)."})
    operation = fields.String(
        allow_none=True, metadata={"description": "null when the request matched no route."}
    )
    method = fields.String()
    path = fields.String()
    route = fields.String(allow_none=True, metadata={"description": "The route's rule."})
    engine = fields.String(allow_none=True)
    engines = fields.List(
        fields.String(),
        metadata={"description": "Every engine a distribution touches.", "optional": True},
    )
    target = fields.String(allow_none=True, metadata={"description": "Reference or container."})
    status = fields.Integer(metadata={"description": "HTTP status the call ended with."})
    result = fields.String(metadata={"description": "success or failure."})
    image_ids = fields.List(fields.String())
    references = fields.List(fields.String())
    code = fields.String(allow_none=True, metadata={"description": "Error code on failure."})


class AuditListSchema(Schema):
    records = fields.List(
        fields.Nested(AuditRecordSchema), metadata={"description": "Newest first."}
    )
    next = fields.String(
        allow_none=True,
        metadata={"description": "Cursor for the next (older) page, as `before`; null at the end."},
    )


audit_query = AuditQuerySchema()
audit_list = AuditListSchema()
