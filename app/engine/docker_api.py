"""Every reach into docker-py's (and its transport's) private API, in one module.

docker-py's public methods read whole answers and hide the HTTP response, so streaming calls
(pull, push, load, import, save, events) go through its low-level helpers ``_url``, ``_get``,
``_post``, ``_post_json``, ``_raise_for_status``, ``_result`` and ``_stream_helper``; the host's
credentials are kept out through ``_auth_configs``; a cancelled job finds its connections through
urllib3's ``_get_conn``/``_put_conn``; a stream is aborted through the socket under
``response.raw``. The rest of ``app.engine`` calls the functions below and nothing private.
``tests/unit/test_docker_contract.py`` checks each of these against the pinned versions
(requirements.txt) and fails when an upgrade changes a name, a signature or a behaviour.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import docker
import requests
from docker.auth import AuthConfig

Checkout = Callable[..., Any]

_POOL_MARK = "_berth_pool_seen"


# --- requests to the engine ---------------------------------------------------------------------


def url(api: docker.APIClient, path: str, *args: str) -> str:
    """The versioned engine URL of ``path`` (``str.format`` style, ``args`` URL-quoted)."""
    return api._url(path, *args)


_CLIENT_TIMEOUT: Any = object()  # "the client's own timeout", docker-py's default


def _options(**options: Any) -> dict[str, Any]:
    # Only what the caller gave: docker-py fills in the client's timeout when none is passed.
    return {name: value for name, value in options.items() if value is not _CLIENT_TIMEOUT}


def get(
    api: docker.APIClient,
    path: str,
    *args: str,
    params: dict[str, Any] | None = None,
    stream: bool = False,
    timeout: Any = _CLIENT_TIMEOUT,
) -> requests.Response:
    """GET an engine path; the response as it comes (not checked: see ``raise_for_status``)."""
    return api._get(
        api._url(path, *args), **_options(params=params, stream=stream, timeout=timeout)
    )


def post(
    api: docker.APIClient,
    path: str,
    *args: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    data: Any = None,
    stream: bool = False,
    timeout: Any = _CLIENT_TIMEOUT,
) -> requests.Response:
    """POST ``data`` (bytes, or an iterable of chunks sent as produced) to an engine path."""
    options = _options(params=params, headers=headers, data=data, stream=stream, timeout=timeout)
    return api._post(api._url(path, *args), **options)


def post_json(
    api: docker.APIClient,
    path: str,
    *args: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    stream: bool = False,
) -> requests.Response:
    """POST an empty JSON object (``{}``), as docker-py's own push does."""
    return api._post_json(
        api._url(path, *args), None, params=params, headers=headers or {}, stream=stream
    )


def raise_for_status(api: docker.APIClient, response: requests.Response) -> None:
    """Raise docker-py's APIError (NotFound for a 404) for an HTTP error answer."""
    api._raise_for_status(response)


def json_result(api: docker.APIClient, response: requests.Response) -> Any:
    """The decoded JSON body of a successful answer; APIError for an error answer."""
    return api._result(response, json=True)


def json_events(api: docker.APIClient, response: requests.Response) -> Iterator[Any]:
    """The JSON objects of a streamed answer, decoded as they arrive (one for an unstreamed one)."""
    return api._stream_helper(response, decode=True)


def refusal(
    status: int, reason: str, address: str, headers: dict[str, str], content: bytes
) -> requests.Response:
    """A complete ``requests.Response`` for an answer read off a raw socket, so that it is
    checked (``raise_for_status``) exactly as docker-py checks its own."""
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.url = address
    response.headers.update(headers)
    response._content = content
    response._content_consumed = True
    response.encoding = "utf-8"
    return response


def raw_socket(response: requests.Response) -> socket.socket | None:
    """The socket under a streaming response (unix, tcp or tls), if still open."""
    try:
        fp = response.raw._fp.fp  # http.client.HTTPResponse's buffered reader
        raw = getattr(fp, "raw", None)
        sock = getattr(raw, "_sock", None) or getattr(raw, "sock", None) or raw
        return sock if isinstance(sock, socket.socket) else None
    except AttributeError:
        return None


# --- the client, once when it is created ------------------------------------------------------


class NoHostCredentials(AuthConfig):
    """An auth config that holds nothing and that docker-py will not replace.

    docker-py reloads ``~/.docker/config.json`` whenever the client's config is empty (see
    ``docker.auth.get_config_header``); this one never reads as empty, so a push or pull
    without credentials from the caller goes to the engine without any.
    """

    def __init__(self) -> None:
        super().__init__({})

    def __bool__(self) -> bool:
        return True

    @property
    def is_empty(self) -> bool:
        return False


def refuse_host_credentials(client: docker.APIClient) -> None:
    """Never let the host user's Docker credentials reach a registry call of ``client``."""
    client._auth_configs = NoHostCredentials()


def time_calls(client: docker.APIClient, observe: Callable[[str, str, float], None]) -> None:
    """Call ``observe(method, path, seconds)`` for each HTTP call of ``client`` (to its headers),
    failed ones included."""
    send = client.send

    def timed_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        try:
            return send(request, **kwargs)
        finally:
            observe(str(request.method), urlsplit(request.url).path, time.perf_counter() - started)

    client.send = timed_send


def on_each_pool(client: docker.APIClient, seen: Callable[[Any], None]) -> None:
    """Call ``seen(pool)`` once for each urllib3 connection pool ``client`` comes to use."""
    for adapter in client.adapters.values():
        get_pool = adapter.get_connection_with_tls_context

        def pool_for(*args: Any, _get: Any = get_pool, **kwargs: Any) -> Any:
            pool = _get(*args, **kwargs)
            if not getattr(pool, _POOL_MARK, False):
                seen(pool)
                setattr(pool, _POOL_MARK, True)
            return pool

        adapter.get_connection_with_tls_context = pool_for


def pool_checkout(pool: Any) -> tuple[Checkout, Checkout]:
    """A urllib3 pool's ``(take a connection, give one back)`` functions."""
    return pool._get_conn, pool._put_conn


def replace_pool_checkout(pool: Any, take: Checkout, give_back: Checkout) -> None:
    """Make ``pool`` take and give back its connections through these functions."""
    pool._get_conn, pool._put_conn = take, give_back
