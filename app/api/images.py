"""Image reads and tagging: ``/v1/images``.

``{ref}`` may contain slashes and a port (``127.0.0.1:5000/team/app:1.0``). A repository whose
last path part is a sub-resource name (``team/history``) is addressed with its tag
(``/v1/images/team/history:latest``) or its id.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint

from app.api.operation import operation
from app.extensions import get_engine
from app.references import validate_image_ref
from app.schemas import images as schemas

bp = Blueprint("images", __name__)

REF = {"ref": "Image reference (name, name:tag, host:port/path:tag, name@digest) or id."}


@bp.get("/images")
@operation(
    scope="read", tags=["images"], query=schemas.image_list_query, response=schemas.image_list
)
def list_images(query):
    """List images (`docker images`), newest first."""
    images = get_engine().list_images(
        dangling=query.get("dangling"),
        reference=query.get("reference"),
        labels=query.get("label"),
        all=query["all"],
    )
    return {"images": images}


@bp.get("/images/<path:ref>")
@operation(
    scope="read", tags=["images"], response=schemas.image_details, errors=(404,), path_params=REF
)
def inspect_image(ref):
    """Inspect an image: config, size and layers (`docker image inspect`)."""
    return get_engine().inspect_image(validate_image_ref(ref))


@bp.get("/images/<path:ref>/history")
@operation(scope="read", tags=["images"], response=schemas.history, errors=(404,), path_params=REF)
def image_history(ref):
    """The image's history, newest step first (`docker history`)."""
    return {"history": get_engine().image_history(validate_image_ref(ref))}


@bp.post("/images/<path:ref>/tags")
@operation(
    scope="write",
    tags=["images"],
    body=schemas.tag_request,
    response=schemas.tag_result,
    status=201,
    errors=(404,),
    path_params=REF,
    response_headers={
        "Location": {"description": "The tagged image.", "schema": {"type": "string"}}
    },
)
def tag_image(ref, body):
    """Tag an image (`docker tag`); an existing tag of that name moves to this image."""
    engine = get_engine()
    image_id = engine.inspect_image_raw(validate_image_ref(ref))["Id"]
    reference = engine.tag_image(image_id, str(body["repository"]), body["tag"])
    location = "/v1/images/" + quote(reference, safe="/:@")
    return {"reference": reference, "id": image_id}, 201, {"Location": location}
