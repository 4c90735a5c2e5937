"""Engine API requests passed through as they are: the engine's status, headers and body.

Docker's own clients (the CLI, docker-py) parse the engine's answers themselves, so the Engine-API
front door (``app.http.engine_api``) sends a request on to the engine and hands back the answer
without reshaping it. The body is read as the engine writes it (a chunk as soon as it arrives, so
progress and event streams are never held back) and the connection is closed with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests

from app.engine.archives import sized_body
from app.engine.base import EngineConnection, translate

READ_BYTES = 1024 * 1024  # the most read at once; a chunk is handed out as soon as it arrives
# The engine's answer headers that Docker's clients read; the others (Date, framing) are the
# server's business.
ANSWER_HEADERS = (
    "Content-Type",
    "Api-Version",
    "OSType",
    "Docker-Experimental",
    "Server",
    "Builder-Version",
    "Cache-Control",
    "Pragma",
    "Content-Length",
)


@dataclass
class EngineAnswer:
    """The engine's answer: its status, the headers clients read and the body, in chunks.

    Iterate the body once; ``close()`` (also at its end) closes the engine connection.
    """

    status: int
    headers: dict[str, str]
    response: requests.Response

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.response.raw.stream(READ_BYTES, decode_content=False)
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection (one read only in part is never reused)."""
        self.response.close()


class PassthroughMixin:
    """``forward``: one Engine API request, answered by the engine as it is."""

    connection: EngineConnection
    _api_headers: dict[str, str] | None = None

    def api_headers(self) -> dict[str, str]:
        """The headers the engine's ``_ping`` sends (``Api-Version``, ``OSType``, ...), asked once,
        for answers Berth sends itself (archives)."""
        if self._api_headers is None:
            answer = self.forward("GET", "/_ping", "", {}, quick=True)
            answer.close()
            self._api_headers = {
                name: value
                for name, value in answer.headers.items()
                if name not in ("Content-Type", "Content-Length", "Cache-Control", "Pragma")
            }
        return self._api_headers

    def forward(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes | Iterable[bytes] | None = None,
        length: int | None = None,
        *,
        quick: bool = False,
    ) -> EngineAnswer:
        """Send ``method path?query`` to the engine; its answer once the headers arrived.

        ``path`` is the Engine API path with its ``/v1.NN`` prefix if the client gave one.
        ``quick`` calls get the metadata timeout, the others none (streams may take minutes).
        An engine that cannot be reached raises EngineUnavailable.
        """
        api = self.connection.api if quick else self.connection.stream_api
        url = api.base_url + path + ("?" + query if query else "")
        data: bytes | Iterable[bytes] | None = body
        if body is not None and not isinstance(body, bytes):
            data = sized_body(body, length)
        with translate():
            response = api.request(
                method,
                url,
                data=data,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=api.timeout,
            )
        answer_headers = {
            name: response.headers[name] for name in ANSWER_HEADERS if name in response.headers
        }
        return EngineAnswer(response.status_code, answer_headers, response)
