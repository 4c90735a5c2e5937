"""JSON from outside (clients, registries), parsed with a bound on nesting.

``json.loads`` recurses once per level of nesting: a small body of 50,000 ``[`` raises
RecursionError, which is no ValueError and so escaped every ``except ValueError`` as a 500. And a
document nested within the interpreter's limit can still exhaust it later, in code that walks
it. ``loads`` refuses both with ``TooDeep``, a ValueError, so callers that already answer bad
JSON with a 400 answer this too. Plain logic: no flask.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # far beyond any document Berth reads (engine configs, manifests: under 10)


class TooDeep(ValueError):
    """A JSON document nested deeper than allowed."""


def loads(raw: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads``; raises TooDeep (a ValueError) past ``max_depth`` levels of nesting."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise TooDeep(f"it is nested deeper than {max_depth} levels") from None
    check_depth(data, max_depth)
    return data


def check_depth(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise TooDeep when ``data`` (parsed JSON) nests lists/objects deeper than ``max_depth``."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise TooDeep(f"it is nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
