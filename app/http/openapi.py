"""The OpenAPI 3 document, generated from the views' ``@operation`` declarations, their schemas
and the route table's scopes (``app.http.scopes``).

apispec (MarshmallowPlugin, FlaskPlugin) builds it; flasgger serves it at ``/openapi.json`` with
Swagger UI at ``/apidocs/``. ``scripts/export_openapi.py`` writes the committed
``openapi/openapi.yaml`` and a test checks the two agree.
"""

from __future__ import annotations

import inspect
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flasgger import APISpec, Swagger
from flask import Flask

from app.domain.references import (
    CONTAINER_PATTERN,
    PATH_PATTERN,
    REFERENCE_MAX,
    REFERENCE_PATTERN,
    REGISTRY_PATTERN,
)
from app.errors import PROBLEM_MIME
from app.http.auth import PUBLIC, required_scope
from app.http.operation import OperationDoc
from app.http.schemas.common import ProblemSchema

OPENAPI_VERSION = "3.0.3"
_METHODS = ("get", "post", "put", "patch", "delete")

# What each documented error status means across the API; operations list the ones they can send.
ERROR_DESCRIPTIONS = {
    400: "Invalid input (VALIDATION_FAILED, INVALID_REFERENCE, MALFORMED_JSON, ...).",
    401: "Missing or unknown bearer token (UNAUTHORIZED).",
    403: "The token lacks the required scope (FORBIDDEN).",
    404: "Not found (IMAGE_NOT_FOUND, CONTAINER_NOT_FOUND, ...).",
    405: "A bare repository name that the URL also reads as another resource (`/v1/images/pull`, "
    "`team/history`): give its tag or digest (METHOD_NOT_ALLOWED).",
    409: "Conflict with the engine's state (IMAGE_IN_USE, ...).",
    413: "Body larger than allowed (PAYLOAD_TOO_LARGE).",
    415: "Body sent with an unsupported content type.",
    500: "Unexpected failure (INTERNAL); details only in the service log.",
    502: "The engine or a registry failed (ENGINE_ERROR, REGISTRY_*).",
    503: "The Docker engine does not answer (ENGINE_UNAVAILABLE), or every archive transfer "
    "slot is taken (TOO_MANY_TRANSFERS, with Retry-After).",
}

DESCRIPTION = """Docker image operations behind a secure HTTP API.

Every operation except health, readiness and these docs needs `Authorization: Bearer <token>`;
each names the scope it needs (`read`, `write`, `delete`, `push`, `export`; `admin` has all).
Errors are `application/problem+json` (RFC 9457) with a stable `code`.

Image references in paths may contain slashes and ports
(`/v1/images/127.0.0.1:5000/team/app:1.0/history`). A repository whose last path part is a
sub-resource name (`history`, `layers`, `tags`, `archive`, `push`) is addressed with an explicit
tag (`/v1/images/team/history:latest`) or by id."""


PATH_PARAMETER_SCHEMAS = {
    "ref": {"type": "string", "pattern": REFERENCE_PATTERN, "maxLength": REFERENCE_MAX},
    "container": {"type": "string", "pattern": CONTAINER_PATTERN},
    "registry": {"type": "string", "pattern": REGISTRY_PATTERN, "maxLength": 261},
    "name": {"type": "string", "pattern": PATH_PATTERN, "maxLength": REFERENCE_MAX},
}

ENGINE_PARAMETER = {
    "name": "engine",
    "in": "query",
    "required": False,
    "description": "Engine to act on (a name from BERTH_ENGINES; default `local`). "
    "Unknown: 404 ENGINE_NOT_FOUND; not allowed for the token: 403 ENGINE_FORBIDDEN.",
    "schema": {"type": "string"},
}


def _schema_name_resolver(schema: Any) -> str:
    cls = schema if inspect.isclass(schema) else type(schema)
    name = cls.__name__
    return name[: -len("Schema")] if name.endswith("Schema") and name != "Schema" else name


def _summary_and_description(view: Any) -> tuple[str, str]:
    doc = inspect.getdoc(view) or ""
    first, _, rest = doc.partition("\n")
    return first.strip(), rest.strip()


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS.get(status, "Error."),
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    }


def _operation(
    endpoint: str, view: Any, doc: OperationDoc, path_args: list[str], scope: str | None
) -> dict:
    summary, description = _summary_and_description(view)
    op: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "tags": doc.tags,
        "summary": summary,
        "x-berth-scope": scope,
    }
    if description:
        op["description"] = description
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": doc.path_params.get(name, name),
            "schema": PATH_PARAMETER_SCHEMAS.get(name, {"type": "string"}),
        }
        for name in path_args
    ]
    if doc.engine:
        parameters.append(ENGINE_PARAMETER)
    if doc.query is not None:
        parameters.append({"in": "query", "schema": doc.query})
    for name, header in doc.headers.items():
        parameters.append({"name": name, "in": "header", **header})
    if parameters:
        op["parameters"] = parameters
    if doc.request_body is not None:
        op["requestBody"] = doc.request_body
    elif doc.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": doc.body}},
        }

    success: dict[str, Any] = {"description": "Success."}
    if doc.response_content is not None:
        success["content"] = doc.response_content
    elif doc.response is not None:
        success["content"] = {"application/json": {"schema": doc.response}}
    if doc.response_headers:
        success["headers"] = doc.response_headers
    responses: dict[Any, Any] = {str(doc.status): success}
    for status, response in doc.extra_responses.items():
        responses[str(status)] = response

    errors = set(doc.errors) | {500}
    if scope == PUBLIC:
        op["security"] = []
    else:
        op["security"] = [{"bearerAuth": [scope]}]
        errors |= {401, 403}
    if doc.query is not None or doc.body is not None or path_args or doc.engine:
        errors.add(400)
    if doc.engine:
        errors.add(404)
    if "ref" in path_args:  # app.http.paths: an ambiguous bare name is answered as the URL reads
        errors.add(405)
    if doc.body is not None:
        errors |= {413, 415}
    if doc.engine:
        errors.add(503)
    for status in sorted(errors):
        responses.setdefault(str(status), _problem_response(status))
    op["responses"] = responses
    return op


def build_spec(app: Flask, version: str) -> dict[str, Any]:
    """The OpenAPI document for every documented route of ``app`` (as a plain dict)."""
    spec = APISpec(
        title="Berth",
        version=version,
        openapi_version=OPENAPI_VERSION,
        info={"description": DESCRIPTION},
        plugins=[FlaskPlugin(), MarshmallowPlugin(schema_name_resolver=_schema_name_resolver)],
    )
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "A token from BERTH_TOKENS(_FILE)."},
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
    with app.test_request_context():
        for rule in rules:
            view = app.view_functions[rule.endpoint]
            doc: OperationDoc | None = getattr(view, "berth_doc", None)
            if doc is None:
                continue
            methods = [m.lower() for m in rule.methods or () if m.lower() in _METHODS]
            operations = {
                m: _operation(
                    rule.endpoint,
                    view,
                    doc,
                    sorted(rule.arguments),
                    required_scope(app, rule.rule, m.upper()),
                )
                for m in methods
            }
            spec.path(view=view, app=app, operations=operations)
    return spec.to_dict()


def init_openapi(app: Flask, version: str) -> None:
    """Serve the generated document at /openapi.json and Swagger UI at /apidocs/."""
    template = build_spec(app, version)
    app.extensions["berth.openapi"] = template
    Swagger(
        app,
        template=template,
        config={
            "headers": [],
            "specs": [{"endpoint": "openapi", "route": "/openapi.json"}],
            "static_url_path": "/flasgger_static",
            "swagger_ui": True,
            "specs_route": "/apidocs/",
            "openapi": OPENAPI_VERSION,
        },
        merge=False,
    )
