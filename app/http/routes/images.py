"""Image reads and tagging: ``/v1/images``.

``{ref}`` may contain slashes and a port (``127.0.0.1:5000/team/app:1.0``). A repository whose
last path part is a sub-resource name (``team/history``) is addressed with its tag
(``/v1/images/team/history:latest``) or its id.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import Blueprint, request

from app.domain import listing
from app.domain.references import validate_image_ref
from app.errors import ValidationFailed
from app.http.accessors import get_engine
from app.http.cached_reads import ETAG_DOC, NOT_MODIFIED_DOC, cached
from app.http.operation import operation
from app.http.paths import LINK_NEXT_DOC, REF
from app.http.schemas import images as schemas

bp = Blueprint("images", __name__)


@bp.get("/images")
@operation(
    tags=["images"],
    query=schemas.image_list_query,
    response=schemas.image_list,
    response_headers={**ETAG_DOC, **LINK_NEXT_DOC},
    extra_responses=NOT_MODIFIED_DOC,
)
@cached(schemas.image_list)
def list_images(query):
    """List images (`docker images`), newest first unless sorted; pages with limit and cursor."""
    images = get_engine().list_images(
        dangling=query.get("dangling"),
        reference=query.get("reference"),
        labels=query.get("label"),
        all=query["all"],
    )
    if "sort" not in query and "limit" not in query and "cursor" not in query:
        return {"images": images}
    sort = query.get("sort", "-created")
    try:
        chosen, following = listing.page(images, sort, query.get("limit"), query.get("cursor"))
    except ValueError as e:
        raise ValidationFailed(f"Invalid cursor: {e}.", errors={"cursor": [str(e)]}) from None
    headers = {}
    if following is not None:
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
        url = request.path + "?" + urlencode([*args, ("cursor", following)])
        headers.update(listing.next_link_header(url))
    return {"images": chosen}, headers


@bp.get("/images/<path:ref>")
@operation(
    tags=["images"],
    response=schemas.image_details,
    errors=(404,),
    path_params=REF,
    response_headers=ETAG_DOC,
    extra_responses=NOT_MODIFIED_DOC,
)
@cached(schemas.image_details)
def inspect_image(ref):
    """Inspect an image: config, size and layers (`docker image inspect`)."""
    return get_engine().inspect_image(validate_image_ref(ref))


@bp.get("/images/<path:ref>/history")
@operation(
    tags=["images"],
    response=schemas.history,
    errors=(404,),
    path_params=REF,
    response_headers=ETAG_DOC,
    extra_responses=NOT_MODIFIED_DOC,
)
@cached(schemas.history)
def image_history(ref):
    """The image's history, newest step first (`docker history`)."""
    return {"history": get_engine().image_history(validate_image_ref(ref))}


@bp.post("/images/<path:ref>/tags")
@operation(
    tags=["lifecycle"],
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
