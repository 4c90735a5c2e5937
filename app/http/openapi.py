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
from flask import Blueprint, Flask

from app.domain.references import (
    CONTAINER_PATTERN,
    PATH_PATTERN,
    REFERENCE_MAX,
    REFERENCE_PATTERN,
    REGISTRY_PATTERN,
)
from app.errors import PROBLEM_MIME, RETRY_STATUSES
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
each names the scope it needs: `read`, `write`, `delete`, `push`, `export` (container
filesystems), `metrics` (`GET /metrics`), or `admin`, which has them all.
Errors are `application/problem+json` (RFC 9457) with a stable `code`.

Image references in paths may contain slashes and ports
(`/v1/images/127.0.0.1:5000/team/app:1.0/history`). A repository whose last path part is a
sub-resource name (`history`, `layers`, `tags`, `archive`, `push`) is addressed with an explicit
tag (`/v1/images/team/history:latest`) or by id."""


# The tags in the order a person reads the API, each with its one line.
TAGS = [
    ("images", "What the engine holds: list, inspect, history, layers, disk usage."),
    ("lifecycle", "Images in and out: pull, push, tag, delete, prune, commit."),
    ("archives", "Images and containers as tar files: save, load, export, import."),
    ("registries", "What registries hold: search, repositories and their tags."),
    ("jobs", "Long operations run in the background: follow, wait for, cancel."),
    ("engines", "The Docker engines Berth drives, and distributions between them."),
    ("system", "Health, readiness and the calling token."),
    ("operations", "For the people who run Berth: metrics and the audit trail."),
]

# Media types that client generators read as JSON, text or raw bytes; a response declared only
# in another type (a tar, NDJSON) also gets an application/octet-stream entry, so that they
# emit a function returning the raw stream instead of leaving the response out.
OCTET_STREAM = "application/octet-stream"
BINARY = {"schema": {"type": "string", "format": "binary"}}


def _generator_readable(media_type: str) -> bool:
    return (
        media_type in ("application/json", OCTET_STREAM)
        or media_type.endswith("+json")
        or media_type.startswith("text/")
    )


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
    """The docstring's first paragraph as a plain-text summary (no markdown backticks), the rest
    as the description."""
    doc = inspect.getdoc(view) or ""
    first, _, rest = doc.partition("\n\n")
    summary = " ".join(first.split()).replace("`", "")
    return summary, rest.strip()


RETRY_AFTER_HEADER = {
    "schema": {"type": "integer"},
    "description": "Seconds to wait before retrying.",
}


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS.get(status, "Error."),
        "content": {PROBLEM_MIME: {"schema": "Problem"}},
    }
    if status in RETRY_STATUSES:
        response["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    return response


def _operation(
    endpoint: str, view: Any, doc: OperationDoc, path_args: list[str], scope: str | None
) -> dict:
    summary, description = _summary_and_description(view)
    op: dict[str, Any] = {
        "operationId": doc.operation_id or endpoint.rpartition(".")[2],
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
        success["content"] = dict(doc.response_content)
        if not any(_generator_readable(media) for media in success["content"]):
            success["content"][OCTET_STREAM] = BINARY
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
    marshmallow_plugin = MarshmallowPlugin(schema_name_resolver=_schema_name_resolver)
    spec = APISpec(
        title="Berth",
        version=version,
        openapi_version=OPENAPI_VERSION,
        info={"description": DESCRIPTION},
        plugins=[FlaskPlugin(), marshmallow_plugin],
        tags=[{"name": name, "description": line} for name, line in TAGS],
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
    document = spec.to_dict()
    _check_operation_ids(document)
    _require_present_fields(document, marshmallow_plugin)
    for component in document["components"]["schemas"].values():
        for name, prop in component.get("properties", {}).items():
            component["properties"][name] = _nullable_ref(prop)
    return document


def _nullable_ref(prop: dict[str, Any]) -> dict[str, Any]:
    """apispec writes a nullable nested schema as ``anyOf: [$ref, {type: object, nullable}]``,
    which generators turn into a third, anonymous model; ``allOf: [$ref]`` with ``nullable``
    says the same in the form they read as "this model or null"."""
    alternatives = prop.get("anyOf")
    if (
        isinstance(alternatives, list)
        and len(alternatives) == 2
        and "$ref" in alternatives[0]
        and alternatives[1] == {"type": "object", "nullable": True}
    ):
        rest = {k: v for k, v in prop.items() if k != "anyOf"}
        return {**rest, "allOf": [alternatives[0]], "nullable": True}
    return prop


def _check_operation_ids(document: dict[str, Any]) -> None:
    seen: set[str] = set()
    for path in document["paths"].values():
        for op in path.values():
            if op["operationId"] in seen:
                raise ValueError(f"operationId {op['operationId']!r} is used twice")
            seen.add(op["operationId"])


def _refs(node: Any) -> set[str]:
    """The component schemas a part of the document refers to (directly)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = {ref.rpartition("/")[2]} if isinstance(ref, str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node)) if node else set()
    return set()


def _closure(names: set[str], components: dict[str, Any]) -> set[str]:
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name not in seen and name in components:
            seen.add(name)
            todo.extend(_refs(components[name]))
    return seen


def _require_present_fields(document: dict[str, Any], plugin: MarshmallowPlugin) -> None:
    """Mark every field of a response schema ``required``, so that generated clients type them
    as always there; a field that may be absent says so with ``metadata={"optional": True}``.
    Schemas that requests use as well keep the ``required`` of their load rules."""
    components = document["components"]["schemas"]
    sent = set().union(
        *(
            _refs(op.get("requestBody", {})) | _refs(op.get("parameters", []))
            for path in document["paths"].values()
            for op in path.values()
        )
    )
    received = set().union(
        *(_refs(op["responses"]) for path in document["paths"].values() for op in path.values())
    )
    classes = {name: key[0] for key, name in plugin.converter.refs.items()}
    for name in _closure(received, components) - _closure(sent, components):
        schema_class = classes.get(name)
        if schema_class is None:
            continue
        required = [
            field.data_key or field_name
            for field_name, field in schema_class().dump_fields.items()
            if not field.metadata.get("optional")
        ]
        if required:
            components[name]["required"] = required


def init_openapi(app: Flask, version: str) -> None:
    """Serve the generated document at /openapi.json and Swagger UI at /apidocs/."""
    template = build_spec(app, version)
    app.extensions["berth.openapi"] = template
    # Registered before flasgger's own: its templates here (app/http/templates/flasgger) win.
    app.register_blueprint(Blueprint("apidocs_templates", __name__, template_folder="templates"))
    Swagger(
        app,
        template=template,
        config={
            "title": "Berth",
            "auth": {},  # rendered into the page's script as `let auth_config = {};`
            "headers": [],
            "specs": [{"endpoint": "openapi", "route": "/openapi.json"}],
            "static_url_path": "/flasgger_static",
            "swagger_ui": True,
            "specs_route": "/apidocs/",
            "openapi": OPENAPI_VERSION,
        },
        merge=False,
    )
