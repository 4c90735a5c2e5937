"""Path parameters shared by many routes: ``{ref}`` (image) and ``{container}``.

``@operation`` checks them before any view runs. Because ``{ref}`` may contain slashes,
``/v1/images/team/history`` could name the image ``team/history`` or the history of ``team``, and
``/v1/images/pull`` the image ``pull`` or the pull operation. Flask routes each to the more
specific rule. So that no URL is ambiguous, a repository whose last path part is a sub-resource
name (``history``, ``layers``, ...) or whose whole name is a word of ``/v1/images/`` (``pull``,
``prune``, ``import``) must be given with its tag or digest (``team/history:latest``).
A request that reaches a route with such a bare name is answered as the URL reads: 405 with the
methods of the resource it names.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app, request

from app.domain.references import (
    is_bare_name,
    is_image_id,
    last_path_component,
    validate_container_ref,
    validate_image_ref,
)
from app.errors import MethodNotAllowed

# The OpenAPI descriptions of the two parameters, for ``@operation(path_params=...)``.
REF = {"ref": "Image reference (name, name:tag, host:port/path:tag, name@digest) or id."}
CONTAINER = {"container": "Container name or id."}

_SUFFIX = re.compile(r"^/v1/images/<path:ref>/([^/<]+)")
_STATIC = re.compile(r"^/v1/images/([^/<]+)$")


def reserved_image_words(app: Flask) -> dict[str, frozenset[str]]:
    """``suffixes``: words after ``/v1/images/<ref>/``; ``names``: static ``/v1/images/<word>``."""
    suffixes, names = set(), set()
    for rule in app.url_map.iter_rules():
        if match := _SUFFIX.match(rule.rule):
            suffixes.add(match.group(1))
        if match := _STATIC.match(rule.rule):
            names.add(match.group(1))
    return {"suffixes": frozenset(suffixes), "names": frozenset(names)}


def is_ambiguous(ref: str) -> bool:
    """A bare name that a URL could also read as a sub-resource or a static operation."""
    if is_image_id(ref) or not is_bare_name(ref):
        return False
    reserved = current_app.extensions["berth.reserved_image_words"]
    if "/" not in ref:
        return ref in reserved["names"]
    return last_path_component(ref) in reserved["suffixes"]


def check_ref(ref: str) -> None:
    """Grammar, then the no-ambiguity rule (see the module docstring)."""
    validate_image_ref(ref)
    if is_ambiguous(ref):
        allowed = allowed_methods(request.path, {"GET", "POST", "PUT", "PATCH", "DELETE"})
        raise MethodNotAllowed(
            f"{request.method} is not an operation of {request.path}. To address the image "
            f"'{ref}' itself, give its tag or digest ('{ref}:latest').",
            headers={"Allow": ", ".join(allowed)},
        )


def _check_args(kwargs: dict[str, Any]) -> None:
    if "ref" in kwargs:
        validate_image_ref(kwargs["ref"])
        if is_ambiguous(kwargs["ref"]):
            raise ValueError("ambiguous reference")
    if "container" in kwargs:
        validate_container_ref(kwargs["container"])


def check_path_args(kwargs: dict[str, Any]) -> None:
    if "ref" in kwargs:
        check_ref(kwargs["ref"])
    if "container" in kwargs:
        validate_container_ref(kwargs["container"])


def allowed_methods(path: str, candidates: set[str]) -> list[str]:
    """The documented methods that really apply to ``path`` (for a 405's ``Allow``).

    A method whose route would read an ambiguous or invalid ``{ref}`` out of this path is left
    out: it would be refused.
    """
    adapter = current_app.url_map.bind("")
    allowed = []
    for method in sorted(candidates - {"HEAD", "OPTIONS"}):
        try:
            _, args = adapter.match(path, method=method)
            _check_args(args)
        except Exception:  # noqa: BLE001 - no match, or an argument that would be refused
            continue
        allowed.append(method)
    return allowed


# The ``Link`` response header of a paged list, as operations document it.
LINK_NEXT_DOC = {
    "Link": {
        "schema": {"type": "string"},
        "description": 'The next page, `<path>; rel="next"` (absent on the last page).',
    }
}
