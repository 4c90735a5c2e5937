"""Schemas shared by every resource: the problem document and small field helpers."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from app.references import InvalidReference, validate_image_ref, validate_repository


class ProblemSchema(Schema):
    """RFC 9457 problem details, as every Berth error is sent."""

    type = fields.String(metadata={"description": "URI of the problem type."})
    title = fields.String(metadata={"description": "Short summary of the problem type."})
    status = fields.Integer(metadata={"description": "HTTP status code."})
    detail = fields.String(metadata={"description": "What went wrong this time."})
    code = fields.String(
        metadata={"description": "Stable machine-readable code, e.g. IMAGE_NOT_FOUND."}
    )
    request_id = fields.String(metadata={"description": "The request's X-Request-Id."})
    errors = fields.Dict(
        metadata={"description": "Field-level validation messages, by field name."}
    )


def _check(validator):
    """Wrap a references validator as a marshmallow validator."""

    def run(value: str) -> None:
        try:
            validator(value)
        except InvalidReference as e:
            raise ValidationError(e.detail) from None

    return run


def ImageRef(**kwargs) -> fields.String:  # noqa: N802 - a field factory, named like a field
    """An image reference or id, checked against the reference grammar."""
    return fields.String(validate=_check(validate_image_ref), **kwargs)


def Repository(**kwargs) -> fields.String:  # noqa: N802
    """A repository name without tag or digest."""
    return fields.String(validate=_check(validate_repository), **kwargs)


def Tag(**kwargs) -> fields.String:  # noqa: N802
    return fields.String(
        validate=validate.Regexp(
            r"^[\w][\w.-]{0,127}$",
            error="Not a valid tag (letters, digits, '_', '.', '-'; at most 128 characters).",
        ),
        **kwargs,
    )


problem_schema = ProblemSchema()
