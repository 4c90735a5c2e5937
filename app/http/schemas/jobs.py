"""Job schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.http.schemas.common import ProblemSchema, Timestamp
from app.jobs import STATES

KINDS = ("pull", "push", "load", "distribution")


class JobListQuerySchema(Schema):
    state = fields.List(
        fields.String(validate=validate.OneOf(STATES)),
        metadata={"description": "Only jobs in these states (repeat for several)."},
    )
    kind = fields.List(
        fields.String(validate=validate.OneOf(KINDS)),
        metadata={"description": "Only jobs of these kinds (repeat for several)."},
    )
    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "At most this many, newest first (1-500; default 50)."},
    )


class JobProgressSchema(Schema):
    current = fields.Integer(metadata={"description": "Bytes done, over all layers."})
    total = fields.Integer(metadata={"description": "Bytes known so far, over all layers."})


class ProblemField(fields.Nested):
    """A problem document as it was recorded, extension members included; documented as
    ``Problem``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(ProblemSchema, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class JobSchema(Schema):
    id = fields.String()
    kind = fields.String(metadata={"description": "What the job does.", "enum": list(KINDS)})
    state = fields.String(metadata={"description": "Where it stands.", "enum": list(STATES)})
    target = fields.String(
        allow_none=True, metadata={"description": "The image reference the job works on."}
    )
    engine = fields.String(allow_none=True, metadata={"description": "The engine it runs on."})
    owner = fields.String(metadata={"description": "Name of the token that started it."})
    created = Timestamp()
    started = Timestamp(allow_none=True)
    finished = Timestamp(allow_none=True)
    progress = fields.Nested(JobProgressSchema)
    result = fields.Dict(
        allow_none=True,
        metadata={
            "description": "On success: what the synchronous call answers (e.g. a push result)."
        },
    )
    error = ProblemField(
        allow_none=True,
        metadata={
            "description": "On failure or cancellation: a problem document (`code` "
            "JOB_CANCELLED, JOB_WORKER_LOST, or the operation's own)."
        },
    )


class JobListSchema(Schema):
    jobs = fields.List(fields.Nested(JobSchema))


job_list_query = JobListQuerySchema()
job = JobSchema()
job_list = JobListSchema()
