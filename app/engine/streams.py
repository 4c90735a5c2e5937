"""Engine progress streams that can be stopped from another thread.

docker-py hands out a plain generator for streaming calls (pull, push, load), which cannot be
closed while another thread reads it. ``EngineStream`` keeps the HTTP response instead: iterating
yields the decoded JSON events, and ``abort()`` (from any thread) shuts the socket down, which
wakes the reader and makes the engine cancel the operation, as a CLI user pressing Ctrl-C does.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests
import urllib3.exceptions

from app.engine import docker_api
from app.errors import EngineError

log = logging.getLogger("berth.engine")


class EngineStream:
    """The decoded events of one streaming engine response; iterate once."""

    def __init__(self, api: docker.APIClient, response: requests.Response) -> None:
        self._api = api
        self._response = response
        self._lock = threading.Lock()
        self.aborted = False
        self._closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for event in docker_api.json_events(self._api, self._response):
                if isinstance(event, dict):
                    yield event
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            docker.errors.DockerException,
            OSError,
            ValueError,
        ) as e:
            if self.aborted:
                return
            raise EngineError(
                f"The engine's progress stream broke off ({type(e).__name__})."
            ) from e
        finally:
            self.close()

    def abort(self) -> None:
        """Stop the stream now, from any thread; the engine sees its client go away."""
        with self._lock:
            if self._closed:
                return
            self.aborted = True
            sock = docker_api.raw_socket(self._response)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._response.close()
        except Exception:  # closing a half-read response from another thread may complain
            log.debug("closing an engine stream failed", exc_info=True)
