"""Container schemas (read-only list)."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.http.schemas.common import Timestamp


class ContainerListQuerySchema(Schema):
    all = fields.Boolean(
        load_default=False, metadata={"description": "Include stopped containers."}
    )


class ContainerSummarySchema(Schema):
    id = fields.String()
    name = fields.String()
    image = fields.String(metadata={"description": "The image as the container was created from."})
    image_id = fields.String()
    status = fields.String(metadata={"description": "Human status, e.g. 'Up 2 minutes'."})
    state = fields.String(metadata={"description": "created, running, paused, exited, ..."})
    created = Timestamp()


class ContainerListSchema(Schema):
    containers = fields.List(fields.Nested(ContainerSummarySchema))


container_list_query = ContainerListQuerySchema()
container_list = ContainerListSchema()
