"""Push schemas."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates

from app.domain.references import InvalidReference, without_digest
from app.services.push import NO_DIGEST_TARGET


class PushRequestSchema(Schema):
    target = fields.String(
        metadata={
            "description": "Tag the image as this reference first and push that "
            "(`host:port/repo:tag`; a missing tag means `latest`). Without it the image "
            "reference itself must name a registry repository (or Docker Hub).",
            "example": "registry.example.com:5000/team/app:1.0",
        }
    )

    @validates("target")
    def _target(self, value: str, **_: object) -> None:
        try:
            without_digest(value, NO_DIGEST_TARGET)
        except InvalidReference as e:
            raise ValidationError(e.detail) from None


class PushResultSchema(Schema):
    reference = fields.String(
        metadata={"description": "What was pushed, `registry/repository:tag`."}
    )
    digest = fields.String(
        metadata={
            "description": "The manifest digest the registry serves for that tag "
            "(its `Docker-Content-Digest`); pull `repository@digest` to get exactly this image."
        }
    )
    size = fields.Integer(
        allow_none=True, metadata={"description": "Size of the manifest in bytes."}
    )
    id = fields.String(metadata={"description": "Local image id of what was pushed."})


push_request = PushRequestSchema()
push_result = PushResultSchema()
