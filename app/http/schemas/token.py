"""The calling token's own description (``GET /v1/token``)."""

from __future__ import annotations

from marshmallow import Schema, fields


class TokenSchema(Schema):
    name = fields.String(metadata={"description": "The token's name (never its secret)."})
    scopes = fields.List(
        fields.String(), metadata={"description": "Its scopes, sorted ('admin' implies all)."}
    )
    engines = fields.List(
        fields.String(), metadata={"description": "Its engine globs, as configured."}
    )
    usable_engines = fields.List(
        fields.String(), metadata={"description": "The configured engines those globs match."}
    )
    default_engine = fields.String(
        allow_none=True,
        metadata={"description": "The engine used without ?engine= (null if not the token's)."},
    )


token = TokenSchema()
