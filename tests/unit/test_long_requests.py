"""The worker tells long requests from short ones by their request line (app.http.long_requests):
for every route Flask would pick, it says what the route table says."""

from __future__ import annotations

import itertools
import re
from urllib.parse import quote

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from app.http.long_requests import is_long, long_request_line
from app.http.scopes import ROUTES, route_key

# Values for each path argument, some of them spelling the ends of other routes, so that the
# request line of one route looks like another's.
SAMPLES = {
    "path": ["x", "a/b", "berth-test/busybox:latest", "x/archive", "x/get", "x/json", "x/push"],
    "plain": ["local", "x", "1.41", "archive", "events", "json"],
}
ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")
QUERIES = ["", "?engine=local", "?fromImage=x&tag=1"]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]


def _paths(rule: str) -> set[str]:
    """Request paths that fill ``rule``'s arguments with every combination of samples."""
    arguments = ARGUMENT.findall(rule)  # (converter, name)
    choices = [SAMPLES["path" if converter == "path" else "plain"] for converter, _ in arguments]
    found = set()
    for values in itertools.product(*choices):
        path = rule
        for (converter, name), value in zip(arguments, values, strict=True):
            path = path.replace(f"<{converter}:{name}>" if converter else f"<{name}>", value, 1)
        found.add(path)
    return found


def test_every_request_line_is_long_exactly_when_the_route_flask_picks_is(offline_app):
    adapter = offline_app.url_map.bind("berth")
    checked = long_ones = 0
    for rule in offline_app.url_map.iter_rules():
        for path, method, query in itertools.product(_paths(rule.rule), METHODS, QUERIES):
            try:
                picked, _ = adapter.match(path, method, return_rule=True)
            except (MethodNotAllowed, NotFound, RequestRedirect):
                continue
            expected = ROUTES[route_key(picked.rule, method)].long
            head = f"{method} {quote(path, safe='/:')}{query} HTTP/1.1\r\nHost: b\r\n\r\n"
            assert is_long(head.encode()) == expected, (head, picked.rule)
            checked += 1
            long_ones += expected
    assert checked > 1000 and 0 < long_ones < checked  # the walk reached both kinds


def test_the_table_marks_transfers_streams_and_registry_calls_long_and_reads_short():
    long_routes = {key for key, route in ROUTES.items() if route.long}
    for key in [
        ("/v1/images/<path:ref>/archive", "GET"),
        ("/v1/archives", "POST"),
        ("/v1/events", "GET"),
        ("/v1/images/pull", "POST"),
        ("/v1/search", "GET"),
        ("/v1/jobs/<id>", "GET"),  # Prefer: wait=N
        ("/engines/<engine>/v<version>/images/create", "POST"),
        ("/engines/<engine>/events", "GET"),
    ]:
        assert key in long_routes, key
    for key in [
        ("/v1/images", "GET"),
        ("/v1/images/<path:ref>", "GET"),
        ("/v1/images/<path:ref>/tags", "POST"),
        ("/v1/health", "GET"),
        ("/engines/<engine>/v<version>/images/<path:name>/json", "GET"),
    ]:
        assert key not in long_routes, key


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET /v1/x/stream HTTP/1.1\r\n", True),
        (b"HEAD /v1/x/stream?a=b HTTP/1.1\r\n", True),
        (b"GET /v1/x/streams HTTP/1.1\r\n", False),
        (b"GET /v1/x/y/stream HTTP/1.1\r\n", False),  # <id> is one segment
        (b"POST /v1/x/stream HTTP/1.1\r\n", False),
        (b"POST /v1/files/a/b/c HTTP/1.1\r\n", True),  # <path:name> takes slashes
        (b"POST /v1/files/ HTTP/1.1\r\n", False),
        (b"POST /v1/files/a HTTP/1.0\r\n", True),
        (b"POST http://host/v1/files/a HTTP/1.1\r\n", False),  # absolute form: short
        (b"GET /v1/x/stream", False),  # no space after the target: not a whole line
    ],
)
def test_a_rule_becomes_a_pattern_over_the_method_and_path(head, expected):
    pattern = long_request_line([("/v1/<id>/stream", "GET"), ("/v1/files/<path:name>", "POST")])
    assert (pattern.match(head) is not None) == expected
