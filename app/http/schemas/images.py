"""Image schemas: list, inspect, history, tag."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.domain.listing import SORTS
from app.domain.references import LABEL_FILTER_PATTERN, REFERENCE_FILTER_PATTERN, REFERENCE_MAX
from app.http.schemas.common import Repository, Tag, Timestamp

_labels = {"keys": fields.String(), "values": fields.String()}


class ImageListQuerySchema(Schema):
    dangling = fields.Boolean(
        metadata={
            "description": "true: exactly what a default prune would remove (untagged, no "
            "children, used by no container); false: only tagged images."
        }
    )
    reference = fields.String(
        validate=[
            validate.Length(min=1, max=REFERENCE_MAX),
            validate.Regexp(
                REFERENCE_FILTER_PATTERN,
                error="A reference pattern is a reference with '*' or '?' wildcards.",
            ),
        ],
        metadata={"description": "Repository pattern, e.g. 'busybox', 'team/*', 'app:1.*'."},
    )
    label = fields.List(
        fields.String(
            validate=validate.Regexp(
                LABEL_FILTER_PATTERN, error="A label filter is 'key' or 'key=value'."
            )
        ),
        metadata={"description": "'key' or 'key=value'; repeat to require several."},
    )
    all = fields.Boolean(
        load_default=False,
        metadata={"description": "Include intermediate images (as `docker images -a`)."},
    )
    sort = fields.String(
        validate=validate.OneOf(SORTS),
        metadata={
            "description": "Order by created, size or name (the smallest tag), '-' first for "
            "descending; ties by id. Default: newest first."
        },
    )
    limit = fields.Integer(
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "At most this many images; the Link header names the next page."},
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "Where the page starts: the opaque value of a Link rel=next."},
    )


class ImageSummarySchema(Schema):
    id = fields.String(metadata={"description": "Image id (sha256:...)."})
    repo_tags = fields.List(fields.String())
    repo_digests = fields.List(fields.String())
    created = Timestamp(metadata={"description": "Creation time."})
    size = fields.Integer(metadata={"description": "Size in bytes, shared layers included."})
    labels = fields.Dict(**_labels)
    containers = fields.Integer(metadata={"description": "Containers (any state) using it."})


class ImageListSchema(Schema):
    images = fields.List(fields.Nested(ImageSummarySchema))


class ImageConfigSchema(Schema):
    cmd = fields.List(fields.String(), allow_none=True)
    entrypoint = fields.List(fields.String(), allow_none=True)
    env = fields.List(fields.String())
    labels = fields.Dict(**_labels)
    exposed_ports = fields.List(fields.String(), metadata={"description": "e.g. '80/tcp'."})
    working_dir = fields.String()
    user = fields.String()
    volumes = fields.List(fields.String())


class ImageDetailsSchema(Schema):
    id = fields.String()
    repo_tags = fields.List(fields.String())
    repo_digests = fields.List(fields.String())
    parent = fields.String(allow_none=True)
    created = Timestamp(allow_none=True)
    author = fields.String()
    comment = fields.String()
    size = fields.Integer()
    architecture = fields.String()
    os = fields.String()
    config = fields.Nested(ImageConfigSchema)
    layers = fields.List(
        fields.String(), metadata={"description": "RootFS diff ids, base layer first."}
    )


class HistoryEntrySchema(Schema):
    id = fields.String(
        allow_none=True, metadata={"description": "Image id of the step, null if not local."}
    )
    created = Timestamp(allow_none=True)
    created_by = fields.String()
    size = fields.Integer()
    comment = fields.String()
    tags = fields.List(fields.String())


class HistorySchema(Schema):
    history = fields.List(
        fields.Nested(HistoryEntrySchema), metadata={"description": "Newest first."}
    )


class TagRequestSchema(Schema):
    repository = Repository(required=True, metadata={"description": "e.g. 'team/app'."})
    tag = Tag(load_default="latest")


class TagResultSchema(Schema):
    reference = fields.String()
    id = fields.String()


image_list_query = ImageListQuerySchema()
image_list = ImageListSchema()
image_details = ImageDetailsSchema()
history = HistorySchema()
tag_request = TagRequestSchema()
tag_result = TagResultSchema()
