"""Image reads and tagging: ``/v1/images``.

``{ref}`` may contain slashes and a port (``127.0.0.1:5000/team/app:1.0``). A repository whose
last path part is a sub-resource name (``team/history``) is addressed with its tag
(``/v1/images/team/history:latest``) or its id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import marshmallow as ma
from flask import Blueprint

from app.api.operation import json_body, json_response, operation
from app.extensions import get_engine
from app.references import validate_image_ref
from app.schemas import images as schemas

bp = Blueprint("images", __name__)

REF = {"ref": "Image reference (name, name:tag, host:port/path:tag, name@digest) or id."}


def _frozen(value: Any) -> Any:
    """A hashable form of parsed view arguments (dicts and lists inside)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def cached(kind: str, schema: ma.Schema) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer from the engine's metadata cache; on a miss run the view and keep its JSON body.

    Goes under ``@operation``, so scope, engine choice and query parsing have run; the key is
    ``kind`` and the view's parsed arguments, in the chosen engine's cache. The cache answers only
    what it got within the current generation of engine events (``app.engine.cache``), and the
    body is what ``render`` would send.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            cache = get_engine().read_cache()
            key = (kind, _frozen(kwargs))
            body = cache.get(key)
            if body is None:
                token = cache.token()  # before the engine is asked: see MetadataCache.put
                body = json_body(view(**kwargs), schema)
                cache.put(key, token, body)
            return json_response(body)

        return wrapper

    return decorate


@bp.get("/images")
@operation(
    scope="read", tags=["images"], query=schemas.image_list_query, response=schemas.image_list
)
@cached("list", schemas.image_list)
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
@cached("inspect", schemas.image_details)
def inspect_image(ref):
    """Inspect an image: config, size and layers (`docker image inspect`)."""
    return get_engine().inspect_image(validate_image_ref(ref))


@bp.get("/images/<path:ref>/history")
@operation(scope="read", tags=["images"], response=schemas.history, errors=(404,), path_params=REF)
@cached("history", schemas.history)
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
