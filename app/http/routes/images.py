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
from flask import Blueprint, current_app, request

from app.domain.references import validate_image_ref
from app.http.accessors import get_engine
from app.http.auth import required_scope
from app.http.cached_reads import CachedAnswer, cache_key
from app.http.operation import json_body, json_response, operation
from app.http.paths import REF
from app.http.schemas import images as schemas

bp = Blueprint("images", __name__)


def cached(schema: ma.Schema) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer from the engine's metadata cache; on a miss run the view and keep its JSON body.

    Goes under ``@operation``, so scope, engine choice and query parsing have run and refused
    what they refuse. The key is the raw path and query (``app.http.cached_reads``, which answers
    most hits before Flask), in the chosen engine's cache; the cache answers only what it got
    within the current generation of engine events (``app.engine.cache``). What is kept is the
    body ``render`` sends, with the route's scope and rule.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            cache = get_engine().read_cache()
            key = cache_key(request.environ)
            answer = cache.get(key)
            if answer is None:
                token = cache.token()  # before the engine is asked: see MetadataCache.put
                body = json_body(view(**kwargs), schema)
                scope = required_scope(current_app, request.url_rule.rule, "GET")
                answer = CachedAnswer(scope=scope, route=request.url_rule.rule, body=body)
                cache.put(key, token, answer)
            return json_response(answer.body)

        return wrapper

    return decorate


@bp.get("/images")
@operation(tags=["images"], query=schemas.image_list_query, response=schemas.image_list)
@cached(schemas.image_list)
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
@operation(tags=["images"], response=schemas.image_details, errors=(404,), path_params=REF)
@cached(schemas.image_details)
def inspect_image(ref):
    """Inspect an image: config, size and layers (`docker image inspect`)."""
    return get_engine().inspect_image(validate_image_ref(ref))


@bp.get("/images/<path:ref>/history")
@operation(tags=["images"], response=schemas.history, errors=(404,), path_params=REF)
@cached(schemas.history)
def image_history(ref):
    """The image's history, newest step first (`docker history`)."""
    return {"history": get_engine().image_history(validate_image_ref(ref))}


@bp.post("/images/<path:ref>/tags")
@operation(
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
