"""Paging over registry lists: catalog pages filtered upstream-page by upstream-page, Berth's own
pages over a complete list, and the ``Link`` to the next page. Plain logic, no I/O."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlencode

from app.domain.listing import next_link_header

MAX_CATALOG_PAGES = 50
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def name_matcher(q: str | None) -> Callable[[str], bool]:
    """A filter for repository names: a glob when ``q`` has ``* ? [``, else a substring.

    Matching ignores case (repository names are lowercase anyway).
    """
    if not q:
        return lambda name: True
    needle = q.lower()
    if any(c in needle for c in "*?["):
        return lambda name: fnmatchcase(name.lower(), needle)
    return lambda name: needle in name.lower()


@dataclass
class Page:
    items: list[str]
    next_last: str | None  # cursor for the following page, None when this is the last


def scan_pages(
    fetch: Callable[[int, str | None], tuple[list[str], bool]],
    *,
    n: int,
    last: str | None = None,
    matches: Callable[[str], bool] | None = None,
    page_size: int | None = None,
    max_pages: int = MAX_CATALOG_PAGES,
) -> Page:
    """Collect up to ``n`` matching names after ``last`` from a lexically ordered, paged list.

    ``fetch(size, last)`` returns one upstream page and whether more follow. Filtering happens
    here, so upstream pages are read until ``n`` matches are found and one more match is known
    to exist (then ``next_last`` is the last name returned), or the list ends (``next_last`` is
    None). After ``max_pages`` upstream pages the page is cut short, with ``next_last`` at the
    last name examined, so a sparse filter never makes one request unbounded. Names not after
    the cursor are skipped, so an upstream that ignores ``last`` cannot make this loop.
    """
    size = page_size or n
    found: list[str] = []
    cursor = last
    for _ in range(max_pages):
        names, more = fetch(size, cursor)
        progressed = False
        for name in names:
            if cursor is not None and name <= cursor:
                continue
            cursor, progressed = name, True
            if matches is not None and not matches(name):
                continue
            if len(found) == n:
                return Page(found, found[-1])
            found.append(name)
        if not more or not progressed:
            return Page(found, None)
        if len(found) == n and matches is None:
            return Page(found, found[-1])  # unfiltered: more upstream means more matches
    return Page(found, cursor)


def page_of(names: list[str], *, n: int, last: str | None = None) -> Page:
    """Berth's own paging over a complete list: sorted, deduplicated, ``n`` after ``last``."""
    ordered = sorted(set(names))
    start = bisect.bisect_right(ordered, last) if last else 0
    items = ordered[start : start + n]
    return Page(items, items[-1] if start + n < len(ordered) else None)


def next_page(
    base: str, params: dict[str, Any], last: str | None
) -> tuple[str | None, dict[str, str]]:
    """The link to the page after ``last`` and its ``Link`` header; (None, {}) on the last page.

    The link is ``base?params&last=...`` with empty values left out; the header is
    ``<link>; rel="next"``, as registries send it (and :func:`next_link` reads it).
    """
    if last is None:
        return None, {}
    pairs = [(k, v) for k, v in {**params, "last": last}.items() if v not in (None, "")]
    link = f"{base}?{urlencode(pairs)}" if pairs else base
    return link, next_link_header(link)


def next_link(header: str | None) -> str | None:
    """The target of a ``Link: <...>; rel="next"`` header, or None."""
    if not header:
        return None
    match = _LINK_NEXT.search(header)
    return match.group(1) if match else None
