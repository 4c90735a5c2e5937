"""Many small GETs on the engine's unix socket, pipelined: a cold cache filled in one go.

A cold ``/layers`` needs every image's inspect (its layer list), and a cold ``/v1/usage`` many of
them (``app.domain.reclaim``): the engine has no call that lists them in bulk, and one request at
a time through docker-py waits a round trip for each (bench/RESULTS.md has the figures). Here the
requests go out back to back on a few connections (HTTP/1.1 pipelining, which the engine's Go
server answers in order) while the answers are read as they come. Each answer is bounded (head,
body) and the socket has the metadata timeout; anything unexpected raises, and the caller falls
back to one call at a time.
Used only for the engine's own unix socket.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, BinaryIO

_HEAD_LIMIT = 64 * 1024
_BODY_LIMIT = 4 * 1024 * 1024  # an inspect or history answer is a few KiB
CONNECTIONS = 2  # the engine, not the client, sets the pace past two


class PipelineError(ValueError):
    """The engine's answers could not be read as expected."""


def get_json_many(
    socket_path: str, paths: list[str], user_agent: str, timeout: float
) -> list[tuple[int, Any]]:
    """``(status, decoded JSON body)`` for each of ``paths`` (request targets), in order."""
    results: list[tuple[int, Any] | None] = [None] * len(paths)
    errors: list[BaseException] = []
    shares = [list(range(i, len(paths), CONNECTIONS)) for i in range(CONNECTIONS)]
    threads = [
        threading.Thread(
            target=_run,
            args=(socket_path, [paths[i] for i in share], share, results, errors),
            kwargs={"user_agent": user_agent, "timeout": timeout},
            daemon=True,
        )
        for share in shares
        if share
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def _run(
    socket_path: str,
    paths: list[str],
    indexes: list[int],
    results: list[tuple[int, Any] | None],
    errors: list[BaseException],
    *,
    user_agent: str,
    timeout: float,
) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            requests = b"".join(
                f"GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: {user_agent}\r\n\r\n".encode()
                for path in paths
            )
            # Written from another thread: the engine stops reading while its answers wait.
            writer = threading.Thread(target=_send, args=(sock, requests), daemon=True)
            writer.start()
            with sock.makefile("rb", buffering=256 * 1024) as stream:
                for index in indexes:
                    results[index] = read_answer(stream)
            writer.join(timeout)
    except BaseException as e:  # handed to the caller's thread
        errors.append(e)


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the reader sees the connection end


def read_answer(stream: BinaryIO) -> tuple[int, Any]:
    """One HTTP/1.1 answer from ``stream``: its status and its body decoded as JSON."""
    status_line = stream.readline(_HEAD_LIMIT)
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise PipelineError(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[bytes, bytes] = {}
    size = len(status_line)
    while True:
        line = stream.readline(_HEAD_LIMIT)
        size += len(line)
        if not line.endswith(b"\n") or size > _HEAD_LIMIT:
            raise PipelineError("the answer's head is cut or too long")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        body = _read_chunked(stream)
    else:
        length = headers.get(b"content-length", b"")
        if not length.isdigit():
            raise PipelineError("the answer has neither a length nor chunks")
        body = _read_exactly(stream, int(length))
    try:
        return int(parts[1]), json.loads(body) if body.strip() else None
    except ValueError as e:
        raise PipelineError("the answer's body is not JSON") from e


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    if size > _BODY_LIMIT:
        raise PipelineError("the answer's body is too large")
    data = stream.read(size)
    if len(data) != size:
        raise PipelineError("the answer's body is cut")
    return data


def _read_chunked(stream: BinaryIO) -> bytes:
    body = bytearray()
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as e:
            raise PipelineError("a chunk's size is not readable") from e
        if size == 0:
            while stream.readline(_HEAD_LIMIT) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        if len(body) + size > _BODY_LIMIT:
            raise PipelineError("the answer's body is too large")
        body += _read_exactly(stream, size)
        if stream.readline(8) not in (b"\r\n", b"\n"):
            raise PipelineError("a chunk does not end where its size says")
