"""Which requests may hold their thread for long, told from the request line alone.

Berth's worker runs short requests (metadata reads, tags, deletions, health) on
``BERTH_THREADS`` threads and long ones (transfers, event streams, pulls, pushes, searches, job
waits: ``long`` in the route table, ``app.http.scopes.ROUTES``) on threads of their own, so
however many long requests run, short ones neither wait behind them nor share their CPU with more
threads than they need. The worker's loop decides from the head it read, before Flask routes:
the table's long routes are turned into one regular expression over the request line's method
and path. A request it misreads is served all the same, on the other threads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.http.scopes import ROUTES

_CONVERTER = re.compile(r"<(?:(\w+):)?\w+>")


def _path_pattern(rule: str) -> str:
    """A Flask rule as a regular expression over a raw request target's path."""
    parts = []
    position = 0
    for found in _CONVERTER.finditer(rule):
        parts.append(re.escape(rule[position : found.start()]))
        parts.append("[^?# ]+" if found.group(1) == "path" else "[^/?# ]+")
        position = found.end()
    parts.append(re.escape(rule[position:]))
    return "".join(parts)


def long_request_line(routes: Iterable[tuple[str, str]]) -> re.Pattern[bytes]:
    """A pattern matching the start of a request whose (rule, method) is in ``routes``.

    ``HEAD`` is the ``GET`` it mirrors; a query string may follow the path.
    """
    by_method: dict[str, list[str]] = {}
    for rule, method in routes:
        by_method.setdefault(method, []).append(_path_pattern(rule))
    branches = []
    for method, paths in sorted(by_method.items()):
        methods = "(?:GET|HEAD)" if method == "GET" else re.escape(method)
        branches.append(f"{methods} (?:{'|'.join(sorted(paths))})")
    return re.compile(f"(?:{'|'.join(branches)})(?:\\?[^ ]*)? ".encode("ascii"))


LONG_REQUEST_LINE = long_request_line(key for key, route in ROUTES.items() if route.long)


def is_long(head: bytes | bytearray) -> bool:
    """Whether the request ``head`` starts with may hold its thread for long."""
    return LONG_REQUEST_LINE.match(head) is not None
