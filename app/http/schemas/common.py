"""Schemas shared by every resource: the problem document and small field helpers."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from app.domain.references import (
    NAME_PATTERN,
    REFERENCE_MAX,
    REFERENCE_PATTERN,
    TAG_PATTERN,
    InvalidReference,
    validate_image_ref,
    validate_repository,
)


class ProblemSchema(Schema):
    """RFC 9457 problem details, as every Berth error is sent.

    Problems may carry extension members (e.g. ``containers`` on IMAGE_IN_USE), as RFC 9457
    allows, hence ``INCLUDE``: the document says additional properties may appear.
    """

    class Meta:
        unknown = INCLUDE

    type = fields.String(metadata={"description": "URI of the problem type."})
    title = fields.String(metadata={"description": "Short summary of the problem type."})
    status = fields.Integer(metadata={"description": "HTTP status code."})
    detail = fields.String(metadata={"description": "What went wrong this time."})
    code = fields.String(
        metadata={"description": "Stable machine-readable code, e.g. IMAGE_NOT_FOUND."}
    )
    request_id = fields.String(
        metadata={"description": "The request's X-Request-Id.", "optional": True}
    )
    errors = fields.Dict(
        metadata={
            "description": "Field-level validation messages, by field name.",
            "optional": True,
        }
    )


def _check(validator):
    """Wrap a references validator as a marshmallow validator."""

    def run(value: str) -> None:
        try:
            validator(value)
        except InvalidReference as e:
            raise ValidationError(e.detail) from None

    return run


def _documented(kwargs: dict, **schema: object) -> dict:
    """Add JSON-schema keywords (pattern, maxLength) to a field's OpenAPI description."""
    metadata = {**schema, **kwargs.pop("metadata", {})}
    return {**kwargs, "metadata": metadata}


def ImageRef(**kwargs) -> fields.String:  # noqa: N802 - a field factory, named like a field
    """An image reference or id, checked against the reference grammar."""
    return fields.String(
        validate=_check(validate_image_ref),
        **_documented(kwargs, pattern=REFERENCE_PATTERN, maxLength=REFERENCE_MAX),
    )


def Repository(**kwargs) -> fields.String:  # noqa: N802
    """A repository name without tag or digest."""
    return fields.String(
        validate=_check(validate_repository),
        **_documented(kwargs, pattern=NAME_PATTERN, maxLength=REFERENCE_MAX),
    )


def Timestamp(**kwargs) -> fields.String:  # noqa: N802
    """An RFC 3339 time, as ``app.domain.times`` writes it (``format: date-time``)."""
    return fields.String(**_documented(kwargs, format="date-time"))


def Tag(**kwargs) -> fields.String:  # noqa: N802
    return fields.String(
        validate=validate.Regexp(
            TAG_PATTERN,
            error="Not a valid tag (letters, digits, '_', '.', '-'; at most 128 characters).",
        ),
        **kwargs,
    )


problem_schema = ProblemSchema()
