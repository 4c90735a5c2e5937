"""Search schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.domain.references import REGISTRY_PATTERN


class SearchQuerySchema(Schema):
    term = fields.String(
        required=True,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "Search term; prefix 'host:port/' to ask another v1 index."},
    )
    limit = fields.Integer(
        load_default=25, validate=validate.Range(min=1, max=100), metadata={"description": "1-100."}
    )
    official = fields.Boolean(metadata={"description": "Only official (true) or non-official."})
    min_stars = fields.Integer(
        validate=validate.Range(min=0), metadata={"description": "At least."}
    )
    registry = fields.String(
        validate=validate.Length(min=1, max=261),
        metadata={
            "description": "Search this private registry's catalog (`host` or `host:port`) "
            "instead of Docker Hub.",
            "pattern": REGISTRY_PATTERN,
        },
    )


class SearchResultSchema(Schema):
    name = fields.String()
    description = fields.String()
    stars = fields.Integer()
    official = fields.Boolean()
    automated = fields.Boolean()


class SearchResultsSchema(Schema):
    results = fields.List(fields.Nested(SearchResultSchema))


search_query = SearchQuerySchema()
search_results = SearchResultsSchema()
