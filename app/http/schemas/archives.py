"""Archive schemas: save several images, load results, import parameters and result."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from app.domain.references import (
    REFERENCE_MAX,
    TAGGED_NAME_PATTERN,
    InvalidReference,
    without_digest,
)
from app.http.schemas.common import ImageRef

MAX_SAVE_REFERENCES = 100


def _import_reference(value: str) -> None:
    try:
        without_digest(value, "Give name or name:tag; an imported image has no digest yet.")
    except InvalidReference as e:
        raise ValidationError(e.detail) from None


class SaveQuerySchema(Schema):
    reference = fields.List(
        ImageRef(),
        required=True,
        validate=validate.Length(min=1, max=MAX_SAVE_REFERENCES),
        metadata={
            "description": "Image to include; repeat for several. `name:tag` or an id saves that "
            "image; a bare `name` saves every tag of the repository (as `docker save name`)."
        },
    )


class LoadResultSchema(Schema):
    loaded = fields.List(
        fields.String(),
        metadata={"description": "The references (name:tag) the archive set, in its order."},
    )
    ids = fields.List(
        fields.String(),
        metadata={
            "description": "Ids of the loaded images (tagged ones, then those the archive "
            "holds without a tag)."
        },
    )


class ImportQuerySchema(Schema):
    reference = fields.String(
        validate=_import_reference,
        metadata={
            "description": "name or name:tag for the new image (a bare name means name:latest). "
            "Without it the image is untagged.",
            "pattern": TAGGED_NAME_PATTERN,
            "maxLength": REFERENCE_MAX,
        },
    )
    message = fields.String(
        validate=validate.Length(max=1024),
        metadata={"description": "Commit message, shown in the image's history."},
    )
    change = fields.List(
        fields.String(),
        load_default=list,
        metadata={
            "description": "Dockerfile instruction applied to the config (CMD, ENTRYPOINT, ENV, "
            "EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR); repeat for several."
        },
    )


class ImportResultSchema(Schema):
    id = fields.String(metadata={"description": "The new image's id."})
    reference = fields.String(
        allow_none=True, metadata={"description": "name:tag given to it, or null."}
    )


save_query = SaveQuerySchema()
load_result = LoadResultSchema()
import_query = ImportQuerySchema()
import_result = ImportResultSchema()
