"""``@operation``: one decorator that declares a view's inputs, outputs and errors.

Like flask-smorest's ``@arguments``/``@response``, the same marshmallow schemas parse the request,
serialise the response and document the operation in OpenAPI (``app.http.openapi`` reads
``berth_doc``), so the spec cannot drift from the code. The scope a route needs is not declared
here but in the route table, ``app.http.scopes``. The view receives ``query=`` and ``body=`` as
loaded dicts and returns either data (dumped with the response schema), ``(data, status,
headers)``, or a ready ``Response`` (streams).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma
from flask import Response, current_app, g, request

from app.domain import jsonsafe
from app.domain.ndjson import json_line
from app.errors import (
    BerthError,
    BodyStalled,
    EngineNotFound,
    Internal,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.http.accessors import services
from app.http.auditing import audited_method, begin_audit, finish_audit, note_audit_target
from app.http.auth import check_engine
from app.http.paths import check_path_args

JSON_MIME = "application/json"
ENGINE_PARAM = "engine"


@dataclass
class OperationDoc:
    """What ``app.http.openapi`` needs to describe one operation."""

    tags: list[str]
    query: ma.Schema | None = None
    body: ma.Schema | None = None
    response: ma.Schema | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    engine: bool = True
    path_params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_body: dict[str, Any] | None = None
    extra_responses: dict[int, dict[str, Any]] = field(default_factory=dict)
    response_content: dict[str, Any] | None = None
    response_headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    operation_id: str | None = None


def operation(
    *,
    tags: Iterable[str],
    query: ma.Schema | None = None,
    body: ma.Schema | None = None,
    response: ma.Schema | None = None,
    status: int = 200,
    errors: Iterable[int] = (),
    engine: bool = True,
    path_params: dict[str, str] | None = None,
    headers: dict[str, dict[str, Any]] | None = None,
    request_body: dict[str, Any] | None = None,
    extra_responses: dict[int, dict[str, Any]] | None = None,
    response_content: dict[str, Any] | None = None,
    response_headers: dict[str, dict[str, Any]] | None = None,
    audit: str | None = None,
    operation_id: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare and enforce a view's contract; see the module docstring.

    Every call of a mutating method (not GET) leaves one audit record named ``audit`` (default:
    the view's name); streamed responses finish theirs when the stream ends. The OpenAPI
    ``operationId`` is the view's name unless ``operation_id`` names it.
    """
    doc = OperationDoc(
        tags=list(tags),
        query=query,
        body=body,
        response=response,
        status=status,
        errors=tuple(errors),
        engine=engine,
        path_params=path_params or {},
        headers=headers or {},
        request_body=request_body,
        extra_responses=extra_responses or {},
        response_content=response_content,
        response_headers=response_headers or {},
        operation_id=operation_id,
    )

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            audited = audited_method(request.method)
            if audited:
                begin_audit(audit or view.__name__, kwargs)
            try:
                check_path_args(kwargs)
                if engine:
                    select_engine()
                # ?engine= is a parameter only of operations on one engine; elsewhere unknown.
                taken = (ENGINE_PARAM,) if engine else ()
                if query is not None:
                    kwargs["query"] = load_query(query, taken)
                elif [name for name in request.args if name not in taken]:
                    raise ValidationFailed(
                        "This operation takes no such query parameters.",
                        errors={n: ["Unknown field."] for n in request.args if n not in taken},
                    )
                if body is not None:
                    kwargs["body"] = load_json_body(body)
                if audited:
                    note_audit_target(kwargs)
                rendered = render(view(*args, **kwargs), response, status)
            except BerthError as e:
                if audited:
                    finish_audit(e.status, code=e.code)
                raise
            except Exception:
                if audited:
                    finish_audit(500, code=Internal.code)
                raise
            if audited and not rendered.is_streamed:
                finish_audit(rendered.status_code, payload=rendered.get_json(silent=True))
            return rendered

        wrapper.berth_doc = doc  # type: ignore[attr-defined]
        wrapper.berth_audit = audit or view.__name__  # type: ignore[attr-defined]
        return wrapper

    return decorate


def select_engine() -> None:
    """Resolve ``?engine=`` (default: the pool's default) into ``g.engine_name``, or refuse it."""
    values = request.args.getlist(ENGINE_PARAM)
    if len(values) > 1:
        raise ValidationFailed(
            "Query parameter 'engine' is given more than once.",
            errors={ENGINE_PARAM: ["Give this parameter once."]},
        )
    pool = services().engines
    name = values[0] if values else pool.default
    if name not in pool:
        raise EngineNotFound(f"No engine named '{name}' is configured.", engine=name)
    principal = g.get("principal")
    if principal is not None:
        # Without ?engine= the caller named none: do not tell it the default engine's name.
        check_engine(principal, name, named=bool(values))
    g.engine_name = name


def load_query(schema: ma.Schema, taken: Iterable[str] = (ENGINE_PARAM,)) -> dict[str, Any]:
    """Query string → dict; list fields take repeats, other fields refuse them; the parameters
    in ``taken`` (read elsewhere) are skipped."""
    data: dict[str, Any] = {}
    for name in request.args:
        if name in taken:
            continue
        values = request.args.getlist(name)
        field_obj = schema.fields.get(name)
        if isinstance(field_obj, ma.fields.List):
            data[name] = values
        elif len(values) > 1:
            raise ValidationFailed(
                f"Query parameter '{name}' is given more than once.",
                errors={name: ["Give this parameter once."]},
            )
        else:
            data[name] = values[0]
    return _load(schema, data)


def load_json_body(schema: ma.Schema) -> dict[str, Any]:
    """The JSON body, size-limited and loaded with ``schema`` (unknown fields refused)."""
    limit = current_app.config["BERTH_MAX_JSON_BYTES"]
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"JSON bodies are limited to {limit} bytes.")
    try:
        raw = request.stream.read(limit + 1) if length is None else request.get_data(cache=False)
    except OSError:  # the body stopped arriving (BERTH_BODY_TIMEOUT) or the client went away
        raise BodyStalled("The request body stopped arriving before it was complete.") from None
    if len(raw) > limit:
        raise PayloadTooLarge(f"JSON bodies are limited to {limit} bytes.")
    if not raw.strip():
        raw = b"{}"
    elif request.mimetype != JSON_MIME:
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        data = jsonsafe.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedJson(f"The body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise MalformedJson("The body must be a JSON object.")
    g.json_body = data  # as sent, for the Idempotency-Key fingerprint (app.http.idempotency)
    return _load(schema, data)


def _load(schema: ma.Schema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ma.ValidationError as e:
        messages = e.messages if isinstance(e.messages, dict) else {"_schema": e.messages}
        fields = ", ".join(sorted(messages))
        raise ValidationFailed(f"Invalid fields: {fields}.", errors=messages) from None


def render(result: Any, schema: ma.Schema | None, status: int) -> Any:
    """Dump view results with the response schema; Responses pass through untouched."""
    if isinstance(result, Response):
        return result
    headers: dict[str, str] = {}
    if isinstance(result, tuple):
        result, status, *rest = result
        headers = rest[0] if rest else {}
    response = json_response(json_body(result, schema), status)
    for name, value in headers.items():
        response.headers[name] = value
    return response


# ``render`` in two steps, so that views answering from the metadata cache
# (app.http.routes.images) send exactly the bytes ``render`` would, without dumping again.
def json_body(result: Any, schema: ma.Schema | None) -> bytes:
    """The JSON body ``render`` sends for ``result``: dumped with ``schema``, compact, newline."""
    payload = schema.dump(result) if schema is not None else result
    return json_line(payload)


def json_response(body: bytes, status: int = 200) -> Response:
    """A response carrying a body made by ``json_body``."""
    return current_app.response_class(body, status=status, mimetype=JSON_MIME)
