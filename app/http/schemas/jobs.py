"""Job schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

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


class JobSchema(Schema):
    id = fields.String()
    kind = fields.String(metadata={"description": "pull, push, load or distribution."})
    state = fields.String(
        metadata={"description": "queued, running, succeeded, failed or cancelled."}
    )
    target = fields.String(
        allow_none=True, metadata={"description": "The image reference the job works on."}
    )
    engine = fields.String(allow_none=True, metadata={"description": "The engine it runs on."})
    owner = fields.String(metadata={"description": "Name of the token that started it."})
    created = fields.String(metadata={"description": "RFC 3339."})
    started = fields.String(allow_none=True)
    finished = fields.String(allow_none=True)
    progress = fields.Nested(JobProgressSchema)
    result = fields.Dict(
        allow_none=True,
        metadata={
            "description": "On success: what the synchronous call answers (e.g. a push result)."
        },
    )
    error = fields.Dict(
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
