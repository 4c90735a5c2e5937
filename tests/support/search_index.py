"""A fake Docker Hub v1 search index for tests (stdlib only).

    index = SearchIndex([{"name": "berth/web", "description": "web thing", "star_count": 3}])
    port = index.start()
    # docker search 127.0.0.1:{port}/web  ->  the engine asks GET /v1/_ping, then
    # GET /v1/search?q=web&n=25 (q is the term without the registry prefix, n the limit)
    index.stop()

The engine treats 127.0.0.0/8 registries as insecure: it first tries
https://127.0.0.1:PORT/v1/_ping (this plain HTTP server answers the TLS
handshake with garbage, the engine gives up on TLS) and falls back to http.

Responses
    GET /v1/_ping                -> 200 true
    GET /v1/search?q=TERM&n=N    -> {"num_pages": 1, "num_results": <matches>, "page_size": N,
                                     "page": 1, "query": TERM, "results": [...first N matches]}
                                    a repo matches when TERM is a case-insensitive substring of
                                    its name or description; N defaults to 25
    anything else (e.g. /v2/)    -> 404 JSON
`requests` records the path (with query string) of every well-formed request.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO_DEFAULTS: dict[str, Any] = {
    "description": "",
    "star_count": 0,
    "is_official": False,
    "is_automated": False,
}


class SearchIndex:
    def __init__(self, repos: list[dict[str, Any] | str]):
        self.repos = [
            dict(REPO_DEFAULTS, **({"name": r} if isinstance(r, str) else r)) for r in repos
        ]
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    def start(self) -> int:
        """Serve on 127.0.0.1 at a free port (in a daemon thread); returns the port."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="search-index", daemon=True
        )
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SearchIndex:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def search(self, query: str, limit: int) -> dict[str, Any]:
        term = query.lower()
        matches = [
            r for r in self.repos if term in r["name"].lower() or term in r["description"].lower()
        ]
        return {
            "num_pages": 1,
            "num_results": len(matches),
            "page_size": limit,
            "page": 1,
            "query": query,
            "results": matches[:limit],
        }

    def _record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                index._record(self.path)
                url = urlsplit(self.path)
                params = parse_qs(url.query)
                if url.path == "/v1/_ping":
                    self._reply(200, True)
                elif url.path == "/v1/search":
                    try:
                        limit = int(params.get("n", ["25"])[0])
                    except ValueError:
                        limit = 25
                    self._reply(200, index.search(params.get("q", [""])[0], limit))
                else:
                    self._reply(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler
