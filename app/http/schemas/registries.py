"""Registry schemas: catalog, tags."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

_n = {"validate": validate.Range(min=1, max=1000)}


class RepositoryQuerySchema(Schema):
    q = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={
            "description": "Only names containing this text, or matching it as a glob when it "
            "has `*`, `?` or `[` (`team/*`, `*-api`)."
        },
    )
    n = fields.Integer(
        load_default=100, **_n, metadata={"description": "Page size (1-1000; default 100)."}
    )
    last = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={"description": "Return names after this one (from the previous page's `next`)."},
    )


class RepositoryPageSchema(Schema):
    registry = fields.String(metadata={"description": "The registry, `host[:port]`."})
    repositories = fields.List(
        fields.String(), metadata={"description": "Repository names, in the registry's order."}
    )
    next = fields.String(
        allow_none=True,
        metadata={
            "description": "Path of the next page, null on the last one (also sent as a "
            '`Link: <...>; rel="next"` header).'
        },
    )


class TagQuerySchema(Schema):
    n = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Page size (1-100; default 100)."},
    )
    last = fields.String(
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Return tags after this one (from the previous page's `next`)."},
    )


class TagEntrySchema(Schema):
    tag = fields.String()
    digest = fields.String(
        allow_none=True,
        metadata={
            "description": "Manifest digest the registry serves for the tag (null if the "
            "tag vanished meanwhile)."
        },
    )


class TagPageSchema(Schema):
    registry = fields.String()
    repository = fields.String()
    tags = fields.List(fields.Nested(TagEntrySchema))
    next = fields.String(allow_none=True, metadata={"description": "Path of the next page."})


repository_query = RepositoryQuerySchema()
repository_page = RepositoryPageSchema()
tag_query = TagQuerySchema()
tag_page = TagPageSchema()
