"""Sorting and keyset paging of an image list, with an opaque cursor.

A page is the items after the cursor in one total order: the sort key, then the image id, so
ties never split or repeat across pages. The cursor holds the sort and the last item's key; it
is base64url JSON, opaque to callers, and refused (``ValueError``) if forged or if it was made
for another sort. Paging over a list that changes between pages shows each image that stays at
most once: the next page starts after a key, not at an offset.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

SORT_KEYS = ("created", "size", "name")
SORTS = tuple(SORT_KEYS) + tuple("-" + key for key in SORT_KEYS)


def _name(item: dict[str, Any]) -> str:
    tags = item.get("repo_tags") or []
    return min(tags) if tags else ""


_KEY: dict[str, Callable[[dict[str, Any]], Any]] = {
    "created": lambda item: item.get("created") or "",
    "size": lambda item: int(item.get("size") or 0),
    "name": _name,
}


def sort_key(sort: str) -> Callable[[dict[str, Any]], list[Any]]:
    """The total order of ``sort`` (``name``, ``-size``, ...): its key, then the image id."""
    key = _KEY[sort.lstrip("-")]
    return lambda item: [key(item), item.get("id") or ""]


def encode_cursor(sort: str, position: list[Any]) -> str:
    raw = json.dumps([sort, position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[Any]:
    """The position a cursor holds; ``ValueError`` if it is not one made for ``sort``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, position = json.loads(raw)
    except (ValueError, TypeError) as e:
        raise ValueError("not a cursor this service made") from e
    if made_for != sort:
        raise ValueError(f"this cursor pages a list sorted by {made_for!r}, not {sort!r}")
    if not (isinstance(position, list) and len(position) == 2 and isinstance(position[1], str)):
        raise ValueError("not a cursor this service made")
    return position


def page(
    items: list[dict[str, Any]], sort: str, limit: int | None, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The items of one page in ``sort`` order, and the cursor of the next page (None: last)."""
    key = sort_key(sort)
    descending = sort.startswith("-")
    ordered = sorted(items, key=key, reverse=descending)
    if cursor is not None:
        after = decode_cursor(cursor, sort)
        try:
            if descending:
                ordered = [item for item in ordered if key(item) < after]
            else:
                ordered = [item for item in ordered if key(item) > after]
        except TypeError as e:  # a position of the wrong type for this key
            raise ValueError("not a cursor this service made") from e
    if limit is None or len(ordered) <= limit:
        return ordered, None
    chosen = ordered[:limit]
    return chosen, encode_cursor(sort, key(chosen[-1]))


def next_link_header(url: str) -> dict[str, str]:
    """The ``Link`` header naming ``url`` as the next page (RFC 8288), as registries send it."""
    return {"Link": f'<{url}>; rel="next"'}
