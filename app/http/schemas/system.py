"""Health and readiness schemas."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "Always 'ok' when the process serves."})


class ReadySchema(Schema):
    status = fields.String(metadata={"description": "'ready' when the default engine answers."})


health = HealthSchema()
ready = ReadySchema()
