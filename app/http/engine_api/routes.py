"""``/engines/<engine>/``: the Engine API for images, so that the docker CLI and docker-py work
through Berth with a token (``DOCKER_HOST=tcp://berth:8080/engines/local``).

Each call of ``rules.CALLS`` is checked as the native API checks it (the scope table, the token's
engines, references, the outbound policy for every registry the engine would contact, audit) and
then passed through (``proxy``). Everything else is refused in the engine's own error shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, Response, g, request

from app.domain.references import (
    parse_reference,
    validate_container_ref,
    validate_image_ref,
    validate_repository,
)
from app.domain.tar_framing import container_archive_name, images_archive_name
from app.errors import EngineNotFound, NotFound, ValidationFailed
from app.http.accessors import get_engine, services
from app.http.auditing import audited_method, begin_audit, note_audit_engines
from app.http.auth import check_engine
from app.http.engine_api import errors, proxy
from app.http.engine_api.rules import CALLS, CATCH_ALL, CATCH_ALL_METHODS, PREFIX, VERSIONED
from app.registry.addresses import DOCKER_HUB, validate_registry
from app.registry.policy import search_index

bp = Blueprint("engine_api", __name__)
errors.register(bp)

_VERSION = re.compile(r"^1\.[0-9]{1,3}$")


@bp.url_value_preprocessor
def _take_prefix(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values is not None:
        g.engine_name = values.pop("engine", None)
        g.api_version = values.pop("version", None)


@bp.before_request
def _check_engine() -> None:
    """The engine in the path must exist and the token must be allowed to use it."""
    name = g.engine_name
    if g.api_version is not None and not _VERSION.match(g.api_version):
        raise NotFound("This is not an Engine API path (/v1.NN/...).")
    if name not in services().engines:
        raise EngineNotFound(f"No engine named '{name}' is configured.")
    principal = g.get("principal")
    if principal is not None:
        check_engine(principal, name)  # the token's engine globs, as on the native routes


def _open_audit(target: str | None) -> None:
    g.engine_target = target
    if audited_method(request.method):
        name = request.url_rule.endpoint.split(".")[-1].removesuffix("_versioned")
        begin_audit(f"engine_api.{name}", {"ref": target})
        note_audit_engines([g.engine_name])


# The calls, by handler (rules.EngineCall.handler).


def _plain(**_: str) -> Response:
    _open_audit(None)
    return proxy.forward()


def _quick(**_: str) -> Response:
    return proxy.forward(quick=True)


def _image(name: str) -> Response:
    _open_audit(validate_image_ref(name))
    return proxy.forward()


def _tag(name: str) -> Response:
    _open_audit(validate_image_ref(name))
    repo = request.args.get("repo")
    if repo:
        validate_repository(repo)
        tag = request.args.get("tag")
        if tag:
            parse_reference(f"{repo}:{tag}")
    return proxy.forward()


def _create() -> Response:
    """``images/create``: ``fromImage`` pulls (the registry must be allowed), ``fromSrc=-``
    imports the request body; another ``fromSrc`` would make the engine fetch a URL."""
    source = request.args.get("fromSrc")
    image = request.args.get("fromImage")
    if source is not None:
        _open_audit(request.args.get("repo"))
        if source != "-":
            raise errors.RefusedCall(
                "Berth imports only the request body (fromSrc=-, as `docker import file` sends "
                "it), never a URL the engine would fetch."
            )
        if request.args.get("repo"):
            _repository_and_tag(request.args["repo"], request.args.get("tag"))
        return proxy.forward(body=proxy.upload_body())
    if not image:
        _open_audit(None)
        raise ValidationFailed("images/create needs fromImage (pull) or fromSrc=- (import).")
    tag = request.args.get("tag")
    reference = f"{image}@{tag}" if tag and ":" in tag else f"{image}:{tag}" if tag else image
    _open_audit(reference)
    services().outbound.check(parse_reference(reference).registry)
    return proxy.forward()


def _repository_and_tag(repo: str, tag: str | None) -> None:
    ref = parse_reference(repo)
    if tag and not ref.tag and not ref.digest:
        parse_reference(f"{repo}:{tag}")


def _push(name: str) -> Response:
    _open_audit(validate_image_ref(name))
    ref = parse_reference(name)
    tag = request.args.get("tag")
    if tag:
        parse_reference(f"{ref.repository}:{tag}")
    services().outbound.check(ref.registry)
    return proxy.forward()


def _remote(name: str) -> Response:
    validate_image_ref(name)
    services().outbound.check(parse_reference(name).registry)
    return proxy.forward()


def _search() -> Response:
    term = request.args.get("term") or ""
    services().outbound.check(validate_registry(search_index(term) or DOCKER_HUB))
    return proxy.forward()


def _auth() -> Response:
    """``docker login``: the engine checks the credentials with the registry named in the body."""
    _open_audit(None)
    body = proxy.small_body() or b"{}"
    try:
        server = str(json.loads(body).get("serveraddress") or "")
    except (ValueError, AttributeError):
        raise ValidationFailed("The body must be a JSON object.") from None
    g.audit["target"] = server or DOCKER_HUB
    services().outbound.check(_registry_of(server))
    return proxy.forward(body=body)


def _registry_of(server: str) -> str:
    """``https://index.docker.io/v1/``, ``host:port`` or ``http://host:port/`` → ``host[:port]``."""
    if not server:
        return DOCKER_HUB
    netloc = urlsplit(server if "://" in server else "//" + server).netloc
    return validate_registry(netloc or server)


def _commit() -> Response:
    container = request.args.get("container") or ""
    repo = request.args.get("repo")
    _open_audit(repo or container)
    validate_container_ref(container)
    if repo:
        _repository_and_tag(repo, request.args.get("tag"))
    return proxy.forward()


def _save(name: str | None = None) -> Response:
    names = [name] if name is not None else request.args.getlist("names")
    if not names:
        raise ValidationFailed("images/get needs at least one 'names'.")
    for each in names:
        validate_image_ref(each)
    engine = get_engine()
    return proxy.download(lambda: engine.save_images(names), images_archive_name(names))


def _export(container: str) -> Response:
    validate_container_ref(container)
    engine = get_engine()
    return proxy.download(
        lambda: engine.export_container(container), container_archive_name(container)
    )


def _load() -> Response:
    _open_audit(None)
    return proxy.forward(body=proxy.upload_body())


def _events() -> Response:
    """Engine events, image events only: ``type=image`` replaces any type filter asked for."""
    query = [(k, v) for k, v in parse_qsl(request.query_string.decode("latin-1")) if k != "filters"]
    raw = request.args.get("filters") or "{}"
    try:
        filters = json.loads(raw)
    except ValueError:
        raise ValidationFailed("'filters' is not JSON.") from None
    if not isinstance(filters, dict):
        raise ValidationFailed("'filters' must be a JSON object.")
    filters["type"] = {"image": True} if isinstance(filters.get("type"), dict) else ["image"]
    query.append(("filters", json.dumps(filters)))
    return proxy.forward(query=urlencode(query))


def _refused(rest: str) -> Response:
    g.engine_target = None
    raise errors.refused(_what(rest))


def _what(rest: str) -> str:
    """The refused call as a person names it: ``POST containers/create``."""
    parts = [p for p in rest.split("/") if p]
    if parts and parts[0].startswith("v") and _VERSION.match(parts[0][1:]):
        parts = parts[1:]
    return f"{request.method} {'/'.join(parts[:2]) or '/'}"


HANDLERS: dict[str, Callable[..., Response]] = {
    "plain": _plain,
    "quick": _quick,
    "image": _image,
    "tag": _tag,
    "create": _create,
    "push": _push,
    "remote": _remote,
    "search": _search,
    "auth": _auth,
    "commit": _commit,
    "save": _save,
    "export": _export,
    "load": _load,
    "events": _events,
}


def _register() -> None:
    for call in CALLS:
        endpoint = call.method.lower() + "_" + re.sub(r"[^a-z]+", "_", call.path).strip("_")
        view = HANDLERS[call.handler]
        for prefix, suffix in ((PREFIX, ""), (VERSIONED, "_versioned")):
            bp.add_url_rule(f"{prefix}/{call.path}", endpoint + suffix, view, methods=[call.method])
    bp.add_url_rule(f"{PREFIX}/{CATCH_ALL}", "refused", _refused, methods=list(CATCH_ALL_METHODS))


_register()
