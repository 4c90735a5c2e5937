"""Health and readiness schemas."""

from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "Always 'ok' when the process serves."})


class ReadySchema(Schema):
    status = fields.String()
    engine = fields.String(metadata={"description": "Engine name."})
    version = fields.String(metadata={"description": "Engine version, e.g. 20.10.24."})
    api_version = fields.String(metadata={"description": "Engine API version, e.g. 1.41."})


health = HealthSchema()
ready = ReadySchema()
