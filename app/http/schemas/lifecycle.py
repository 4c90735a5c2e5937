"""Schemas for the image lifecycle: commit, pull, delete, prune, layers and usage."""

from __future__ import annotations

import time

from marshmallow import Schema, ValidationError, fields, validate, validates

from app.domain.prune_filters import parse_until
from app.domain.references import (
    LABEL_FILTER_PATTERN,
    REFERENCE_MAX,
    REFERENCE_PATTERN,
    InvalidReference,
    is_image_id,
    parse_reference,
)
from app.http.schemas.common import ProblemSchema, Repository, Tag, Timestamp

_OS = (
    "aix|android|darwin|dragonfly|freebsd|illumos|ios|js|linux|netbsd|openbsd|plan9|solaris|windows"
)
_ARCH = "386|amd64|arm|arm64|loong64|mips|mips64|mips64le|mipsle|ppc64|ppc64le|riscv64|s390x|wasm"
PLATFORM = rf"^(?:(?:{_OS})(?:/(?:{_ARCH})(?:/v[5-8])?)?|(?:{_ARCH}))$"
# until: unix seconds, a duration (24h, 1h30m), or an RFC 3339 date or time.
_NUM = r"[0-9]{1,10}(?:\.[0-9]{1,9})?"
_DAY = r"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
UNTIL = (
    rf"^(?:{_NUM}|(?:{_NUM}(?:ns|us|ms|s|m|h))+|{_DAY}"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?)?)$"
)
LABEL_FILTER = LABEL_FILTER_PATTERN
_ids = {"metadata": {"description": "Image ids (sha256:...)."}}


# --- commit ---------------------------------------------------------------------------------


class CommitRequestSchema(Schema):
    repository = Repository(
        metadata={"description": "Repository of the new image (no tag); omit for an untagged one."}
    )
    tag = Tag(
        metadata={
            "description": "Tag for the new image ('latest' when omitted); needs `repository`."
        }
    )
    author = fields.String(
        validate=validate.Length(max=1024),
        metadata={"description": "Author, e.g. 'Ann <ann@example.com>'; shown in inspect."},
    )
    message = fields.String(
        validate=validate.Length(max=65536),
        metadata={"description": "Commit message; shown as `comment` in inspect and history."},
    )
    changes = fields.List(
        fields.String(),
        load_default=list,
        metadata={
            "description": "Dockerfile instructions applied to the new image's config, one per "
            "item: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR.",
            "example": ["ENV MODE=production", 'CMD ["sh", "-c", "serve"]'],
        },
    )
    pause = fields.Boolean(
        load_default=True,
        metadata={"description": "Pause the container while committing (consistent snapshot)."},
    )


class CommitResultSchema(Schema):
    id = fields.String(metadata={"description": "The new image's id."})
    reference = fields.String(
        allow_none=True, metadata={"description": "repository:tag, or null when untagged."}
    )


# --- pull -----------------------------------------------------------------------------------


class PullRequestSchema(Schema):
    reference = fields.String(
        required=True,
        metadata={
            "description": "name, name:tag or name@digest; a name without tag means ':latest' "
            "(never all tags).",
            "example": "127.0.0.1:5000/team/app:1.0",
            "pattern": REFERENCE_PATTERN,
            "maxLength": REFERENCE_MAX,
        },
    )
    platform = fields.String(
        validate=validate.Regexp(PLATFORM, error="Not a platform (os[/arch[/variant]])."),
        metadata={
            "description": "os[/arch[/variant]] or arch, e.g. linux/amd64, linux/arm/v7.",
            "example": "linux/amd64",
        },
    )

    @validates("reference")
    def _reference(self, value, **kwargs):
        if is_image_id(value):
            raise ValidationError("Pull needs a repository reference, not an image id.")
        try:
            parse_reference(value)
        except InvalidReference as e:
            raise ValidationError(e.detail) from None


class PullResultSchema(Schema):
    id = fields.String(metadata={"description": "Local image id."})
    reference = fields.String(metadata={"description": "What was pulled, as the engine names it."})
    digest = fields.String(
        allow_none=True, metadata={"description": "The manifest digest the registry served."}
    )


# --- delete ---------------------------------------------------------------------------------


class DeleteQuerySchema(Schema):
    force = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Remove even when stopped containers use the image or it has tags in "
            "several repositories. Never overrides a running container or child images."
        },
    )
    noprune = fields.Boolean(
        load_default=False, metadata={"description": "Keep untagged parent images."}
    )
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "Answer what would be untagged and deleted; change nothing."},
    )


class DeleteResultSchema(Schema):
    untagged = fields.List(fields.String(), metadata={"description": "References removed."})
    deleted = fields.List(fields.String(), **_ids)
    deleted_layers = fields.List(
        fields.String(), metadata={"description": "Chain ids of layers removed from disk."}
    )
    dry_run = fields.Boolean()


class ConflictContainerSchema(Schema):
    id = fields.String()
    name = fields.String()
    state = fields.String(metadata={"description": "running, paused, exited, created, ..."})


class ImageConflictSchema(ProblemSchema):
    """A 409 from image deletion: IMAGE_IN_USE, IMAGE_HAS_CHILDREN or IMAGE_HAS_REFERENCES."""

    image = fields.String(metadata={"description": "The image the conflict is about."})
    containers = fields.List(
        fields.Nested(ConflictContainerSchema),
        metadata={"description": "IMAGE_IN_USE: every container (any state) using the image."},
    )
    running = fields.Integer(metadata={"description": "IMAGE_IN_USE: running containers."})
    stopped = fields.Integer(metadata={"description": "IMAGE_IN_USE: stopped containers."})
    children = fields.List(fields.Dict(), metadata={"description": "IMAGE_HAS_CHILDREN."})
    references = fields.List(fields.String(), metadata={"description": "IMAGE_HAS_REFERENCES."})
    force_would_help = fields.Boolean(
        metadata={"description": "Whether force=true would delete the image."}
    )
    force_outcome = fields.String(
        validate=validate.OneOf(["deleted", "untagged_only", "conflict"]),
        metadata={
            "description": "What force=true would do: delete the image, only remove the name "
            "(a running container keeps the image, untagged), or be refused too."
        },
    )


# --- prune ----------------------------------------------------------------------------------


def _check_until(value: str) -> None:
    try:
        parse_until(value, time.time())
    except ValueError as e:
        raise ValidationError(str(e)) from None


class PruneRequestSchema(Schema):
    dangling = fields.Boolean(
        load_default=True,
        metadata={
            "description": "true: only dangling images (untagged, no children); false: every "
            "image no container uses (`docker image prune -a`)."
        },
    )
    until = fields.String(
        validate=_check_until,
        metadata={
            "description": "Only images created before: a duration back from now (24h, 90m), "
            "an RFC 3339 date or time, or unix seconds.",
            "example": "24h",
            "pattern": UNTIL,
        },
    )
    labels = fields.List(
        fields.String(
            validate=validate.Regexp(LABEL_FILTER, error="A label filter is 'key' or 'key=value'.")
        ),
        load_default=list,
        metadata={"description": "Only images with every one of these labels ('key', 'k=v')."},
    )
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "Answer the candidates and the bytes they would free."},
    )


class SkippedImageSchema(Schema):
    id = fields.String()
    reason = fields.String()


class PruneResultSchema(Schema):
    untagged = fields.List(fields.String())
    deleted = fields.List(fields.String(), **_ids)
    deleted_layers = fields.List(fields.String())
    space_reclaimed = fields.Integer(metadata={"description": "Bytes freed (or to be freed)."})
    dry_run = fields.Boolean()
    skipped = fields.List(
        fields.Nested(SkippedImageSchema),
        metadata={
            "description": "dry_run only: candidates the engine would keep, and why.",
            "optional": True,
        },
    )


# --- layers and usage -----------------------------------------------------------------------


class SharingImageSchema(Schema):
    id = fields.String()
    repo_tags = fields.List(fields.String())


class LayerSchema(Schema):
    index = fields.Integer(metadata={"description": "0 is the base layer."})
    diff_id = fields.String(metadata={"description": "Digest of the uncompressed layer."})
    chain_id = fields.String(
        metadata={"description": "The layer as stored: it covers every layer below it too."}
    )
    size = fields.Integer(
        allow_none=True, metadata={"description": "Bytes on disk; null if the engine cannot say."}
    )
    created = Timestamp(allow_none=True)
    created_by = fields.String(allow_none=True, metadata={"description": "The step's command."})
    comment = fields.String(allow_none=True, metadata={"description": "The step's message."})
    author = fields.String(
        allow_none=True, metadata={"description": "The step's author, when its image is local."}
    )
    step_image = fields.String(
        allow_none=True, metadata={"description": "Local image made by that step, if any."}
    )
    shared_with = fields.List(
        fields.Nested(SharingImageSchema),
        metadata={
            "description": "Other local images holding this very layer: at most 50, tagged "
            "ones first (`shared_count` counts them all)."
        },
    )
    shared_count = fields.Integer(
        metadata={"description": "How many other local images hold this very layer."}
    )


class LayersSchema(Schema):
    id = fields.String()
    repo_tags = fields.List(fields.String())
    size = fields.Integer(metadata={"description": "As `docker images` shows it."})
    unique_size = fields.Integer(
        allow_none=True, metadata={"description": "Bytes in layers no other image holds."}
    )
    shared_size = fields.Integer(
        allow_none=True, metadata={"description": "Bytes in layers other images hold too."}
    )
    layers = fields.List(fields.Nested(LayerSchema), metadata={"description": "Base first."})


class UsageQuerySchema(Schema):
    reference = fields.List(
        fields.String(
            validate=validate.Regexp(
                r"^[A-Za-z0-9._/:@*?-]{1,255}$",
                error="A reference pattern: name characters and the wildcards * and ?.",
            )
        ),
        metadata={
            "description": "Only images matching (repeatable), e.g. 'team/*', 'app:1.*' "
            "(wildcards * and ?). Without it, every image the engine lists."
        },
    )


class DanglingUsageSchema(Schema):
    count = fields.Integer(metadata={"description": "Dangling images (untagged, no children)."})
    size = fields.Integer(metadata={"description": "Sum of their sizes."})
    reclaimable = fields.Integer(
        allow_none=True,
        metadata={
            "description": "Bytes a default prune would free now (null when filtered by reference)."
        },
    )


class UsageSchema(Schema):
    images = fields.Integer(metadata={"description": "Images counted (as `docker images`)."})
    apparent_size = fields.Integer(metadata={"description": "Sum of the images' sizes."})
    actual_size = fields.Integer(metadata={"description": "Disk they use: each layer once."})
    shared_size = fields.Integer(
        metadata={"description": "Bytes of layers two or more images hold, counted once."}
    )
    dangling = fields.Nested(DanglingUsageSchema)


commit_request = CommitRequestSchema()
commit_result = CommitResultSchema()
pull_request = PullRequestSchema()
pull_result = PullResultSchema()
delete_query = DeleteQuerySchema()
delete_result = DeleteResultSchema()
image_conflict = ImageConflictSchema()
prune_request = PruneRequestSchema()
prune_result = PruneResultSchema()
layers = LayersSchema()
usage_query = UsageQuerySchema()
usage = UsageSchema()
