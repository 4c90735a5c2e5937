"""Engine listing schemas."""

from __future__ import annotations

from marshmallow import Schema, fields


class EngineStatusSchema(Schema):
    name = fields.String()
    reachable = fields.Boolean()
    version = fields.String(allow_none=True)
    api_version = fields.String(allow_none=True)
    images = fields.Integer(allow_none=True, metadata={"description": "Number of images."})
    error = fields.String(
        allow_none=True, metadata={"description": "Why the engine is not reachable."}
    )


class EngineListSchema(Schema):
    default = fields.String(
        allow_none=True,
        metadata={"description": "The engine used without ?engine= (null if not the token's)."},
    )
    engines = fields.List(fields.Nested(EngineStatusSchema))


engine_list = EngineListSchema()
