"""Distribution schemas: the request, and the distribution with one row per target engine."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from app.domain.references import InvalidReference, without_digest
from app.engine.pool import ENGINE_NAME
from app.http.schemas.common import ImageRef, Timestamp
from app.jobs import STATES
from app.services.distribution import ROW_STATES, VIA_REGISTRY, VIA_STREAM

ENGINE_NAME_DOC = {"type": "string", "pattern": ENGINE_NAME.pattern}
MAX_TARGETS = 256


def _engine_name(value: Any) -> str:
    if not isinstance(value, str) or not ENGINE_NAME.match(value):
        raise ValidationError(
            "Not an engine name (lowercase letters, digits, '.', '_' or '-'; at most 63)."
        )
    return value


class TargetEngines(fields.Field):
    """``"all"`` or a list of engine names."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str | list[str]:
        if value == "all":
            return "all"
        if not isinstance(value, list) or not value:
            raise ValidationError('Give "all" or a non-empty list of engine names.')
        if len(value) > MAX_TARGETS:
            raise ValidationError(f"At most {MAX_TARGETS} engines.")
        return [_engine_name(item) for item in value]


class Via(fields.Field):
    """``"stream"`` or ``{"registry": "host:port/repository:tag"}``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        if value == VIA_STREAM:
            return {"kind": VIA_STREAM, "registry": None}
        if not isinstance(value, dict) or set(value) != {"registry"}:
            raise ValidationError(
                'Give "stream" or {"registry": "host:port/repository:tag"} (no other keys).'
            )
        registry = value["registry"]
        if not isinstance(registry, str):
            raise ValidationError({"registry": ["Not a valid string."]})
        try:
            ref = without_digest(registry, "Give a tag, not a digest: it is pushed to.")
        except InvalidReference as e:
            raise ValidationError({"registry": [e.detail]}) from None
        return {"kind": VIA_REGISTRY, "registry": str(ref.with_default_tag())}


class DistributionRequestSchema(Schema):
    image = ImageRef(
        required=True,
        metadata={
            "description": "The image on the source engine: a reference (a bare name means "
            "`:latest`) or an id. Targets get it under that name too (not for an id).",
            "example": "team/app:1.0",
        },
    )
    target_engines = TargetEngines(
        required=True,
        metadata={
            "description": 'The engines to send it to, or `"all"`: every configured engine '
            "but the source. The token must be allowed to use each one.",
            "oneOf": [
                {"type": "array", "items": ENGINE_NAME_DOC, "minItems": 1, "maxItems": MAX_TARGETS},
                {"type": "string", "enum": ["all"]},
            ],
            "example": ["edge-1", "edge-2"],
        },
    )
    via = Via(
        required=True,
        metadata={
            "description": 'How: `{"registry": "host:port/repository:tag"}` pushes once from the '
            'source and pulls on every target; `"stream"` feeds the source\'s `docker save` '
            "straight into `docker load` on each target (for engines that reach no registry).",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"registry": {"type": "string", "maxLength": 255}},
                    "required": ["registry"],
                    "additionalProperties": False,
                },
                {"type": "string", "enum": [VIA_STREAM]},
            ],
            "example": {"registry": "registry.example.com:5000/team/app:1.0"},
        },
    )
    source_engine = fields.String(
        validate=validate.Regexp(ENGINE_NAME, error="Not an engine name."),
        metadata={"description": "Where the image is (default: the default engine)."},
    )


class DistributionRowSchema(Schema):
    engine = fields.String(metadata={"description": "The target engine."})
    state = fields.String(
        validate=validate.OneOf(ROW_STATES),
        metadata={"description": "pending, running, succeeded, failed or cancelled."},
    )
    image_id = fields.String(
        allow_none=True,
        metadata={"description": "The image id the engine reports; equal to the source's."},
    )
    bytes = fields.Integer(
        metadata={
            "description": "Bytes moved to this engine (via registry: layer bytes pulled, "
            "layers it had already cost nothing; as a stream: archive bytes loaded)."
        }
    )
    duration = fields.Float(
        allow_none=True, metadata={"description": "Seconds from its start to its end."}
    )
    started = Timestamp(allow_none=True)
    finished = Timestamp(allow_none=True)
    error = fields.Dict(
        allow_none=True,
        metadata={"description": "Why it failed: a problem document (`code`, `detail`)."},
    )


class DistributionPushSchema(Schema):
    reference = fields.String(metadata={"description": "What the source pushed."})
    digest = fields.String(
        allow_none=True,
        metadata={"description": "The manifest digest the registry confirmed (pulled by it)."},
    )
    bytes = fields.Integer(allow_none=True, metadata={"description": "Layer bytes pushed."})
    duration = fields.Float(allow_none=True, metadata={"description": "Seconds."})
    error = fields.Dict(allow_none=True, metadata={"description": "Why the push failed."})


class DistributionSummarySchema(Schema):
    succeeded = fields.List(fields.String())
    failed = fields.List(fields.String())
    cancelled = fields.List(fields.String())
    in_progress = fields.List(fields.String(), metadata={"description": "Pending or running."})


class DistributionSchema(Schema):
    id = fields.String(metadata={"description": "The job's id (also `/v1/jobs/{id}`)."})
    state = fields.String(
        validate=validate.OneOf(STATES),
        metadata={
            "description": "queued, running, succeeded (every target reports the source's "
            "image id), failed (some or all targets did not get it; see `partial`) or "
            "cancelled."
        },
    )
    owner = fields.String(metadata={"description": "Name of the token that started it."})
    created = Timestamp()
    started = Timestamp(allow_none=True)
    finished = Timestamp(allow_none=True)
    image = fields.String(allow_none=True, metadata={"description": "As the request named it."})
    image_id = fields.String(
        allow_none=True, metadata={"description": "The image's id on the source engine."}
    )
    source_engine = fields.String(allow_none=True)
    via = fields.String(allow_none=True, metadata={"description": "registry or stream."})
    registry = fields.String(
        allow_none=True, metadata={"description": "The registry reference (via registry)."}
    )
    push = fields.Nested(
        DistributionPushSchema,
        allow_none=True,
        metadata={"description": "The source's push (via registry), once it ended."},
    )
    engines = fields.List(
        fields.Nested(DistributionRowSchema), metadata={"description": "One row per target."}
    )
    summary = fields.Nested(DistributionSummarySchema)
    partial = fields.Boolean(
        metadata={"description": "True when it failed but some targets did get the image."}
    )
    error = fields.Dict(
        allow_none=True,
        metadata={
            "description": "When it failed: a problem document (DISTRIBUTION_PARTIAL, "
            "DISTRIBUTION_FAILED, JOB_CANCELLED, ...)."
        },
    )


distribution_request = DistributionRequestSchema()
distribution = DistributionSchema()
