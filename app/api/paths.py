"""Path parameters shared by many routes: ``{ref}`` (image) and ``{container}``.

``@operation`` checks them before any view runs. Because ``{ref}`` may contain slashes,
``/v1/images/team/history`` could name the image ``team/history`` or the history of ``team``;
Flask routes it to the history of ``team``. So that no URL is ambiguous, a repository whose last
path part is a sub-resource name (``history``, ``layers``, ...) must be given with its tag or
digest everywhere (``team/history:latest``); a bare one is refused with INVALID_REFERENCE.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app

from app.errors import InvalidReference
from app.references import (
    is_bare_name,
    is_image_id,
    last_path_component,
    validate_container_ref,
    validate_image_ref,
)

_SUFFIX = re.compile(r"^/v1/images/<path:ref>/([^/<]+)")


def image_subresources(app: Flask) -> frozenset[str]:
    """The words that follow ``/v1/images/<path:ref>/`` in the app's routes."""
    words = set()
    for rule in app.url_map.iter_rules():
        match = _SUFFIX.match(rule.rule)
        if match:
            words.add(match.group(1))
    return frozenset(words)


def check_ref(ref: str) -> None:
    """Grammar, then the no-ambiguity rule (see the module docstring)."""
    validate_image_ref(ref)
    if is_image_id(ref) or not is_bare_name(ref):
        return
    word = last_path_component(ref)
    if "/" in ref and word in current_app.extensions["berth.subresources"]:
        raise InvalidReference(
            f"'{ref}' ends in '{word}', a sub-resource name: give its tag or digest "
            f"('{ref}:latest') so the URL is not ambiguous."
        )


def check_path_args(kwargs: dict[str, Any]) -> None:
    if "ref" in kwargs:
        check_ref(kwargs["ref"])
    if "container" in kwargs:
        validate_container_ref(kwargs["container"])


def allowed_methods(path: str, candidates: set[str]) -> list[str]:
    """The documented methods that really apply to ``path`` (for a 405's ``Allow``).

    A method whose route would read an ambiguous ``{ref}`` out of this path is left out: it
    would be refused anyway.
    """
    adapter = current_app.url_map.bind("")
    allowed = []
    for method in sorted(candidates - {"HEAD", "OPTIONS"}):
        try:
            _, args = adapter.match(path, method=method)
            check_path_args(args)
        except Exception:  # noqa: BLE001 - no match, or an argument that would be refused
            continue
        allowed.append(method)
    return allowed
