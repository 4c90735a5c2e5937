"""app.engine.pipelined: many GETs on one unix socket, answers read as they come, bounded."""

from __future__ import annotations

import io
import json
import socket
import socketserver
import threading

import pytest

from app.engine import pipelined
from app.engine.pipelined import PipelineError, get_json_many, read_answer


def answer(body: bytes, status: str = "200 OK", chunked: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
    if chunked:
        middle = len(body) // 2
        framed = b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:middle], body[middle:]) if part
        )
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + framed + b"0\r\n\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_answers_with_a_length_or_in_chunks_are_read_one_after_the_other():
    stream = io.BytesIO(
        answer(b'{"Id": "a"}')
        + answer(b'[{"Size": 1}]', chunked=True)
        + answer(b'{"message": "No such image"}', "404 Not Found")
    )
    assert read_answer(stream) == (200, {"Id": "a"})
    assert read_answer(stream) == (200, [{"Size": 1}])
    assert read_answer(stream) == (404, {"message": "No such image"})


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "cut"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "cut or too long"),
        (b"HTTP/1.1 200 OK\r\n\r\n{}", "neither a length nor chunks"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", "not JSON"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "size is not readable"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX", "does not end"),
    ],
)
def test_an_answer_that_is_not_what_the_engine_sends_is_refused(raw, message):
    with pytest.raises(PipelineError, match=message):
        read_answer(io.BytesIO(raw))


def test_bodies_and_heads_are_bounded(monkeypatch):
    monkeypatch.setattr(pipelined, "_BODY_LIMIT", 100)
    big = json.dumps(["x" * 200]).encode()
    with pytest.raises(PipelineError, match="too large"):
        read_answer(io.BytesIO(answer(big)))
    with pytest.raises(PipelineError, match="too large"):
        read_answer(io.BytesIO(answer(big, chunked=True)))
    monkeypatch.setattr(pipelined, "_HEAD_LIMIT", 100)
    long_head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: y\r\n" * 20 + b"Content-Length: 2\r\n\r\n{}"
    with pytest.raises(PipelineError, match="too long"):
        read_answer(io.BytesIO(long_head))


class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers each GET, in order, with its path as JSON (404 for paths under /gone/)."""

    daemon_threads = True
    connections: list[int]


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.server.connections.append(1)  # type: ignore[attr-defined]
        while line := self.rfile.readline():
            path = line.split()[1].decode()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            body = json.dumps({"path": path}).encode()
            gone = path.startswith("/gone/")
            self.wfile.write(answer(body, "404 Not Found" if gone else "200 OK", chunked=gone))


@pytest.fixture
def engine(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = _Engine(path, _Handler)
    server.connections = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path, server
    server.shutdown()
    server.server_close()


def test_many_gets_come_back_in_the_order_asked_over_a_few_connections(engine):
    path, server = engine
    paths = [f"/v1.41/images/sha256:{n:064x}/json" for n in range(3000)] + ["/gone/x"]
    answers = get_json_many(path, paths, "Berth-test", timeout=10)
    assert answers[:-1] == [(200, {"path": p}) for p in paths[:-1]]
    assert answers[-1] == (404, {"path": "/gone/x"})
    assert len(server.connections) == pipelined.CONNECTIONS


def test_an_engine_that_goes_away_fails_the_whole_read(tmp_path):
    path = str(tmp_path / "closing.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()

        def close_after_one() -> None:
            for _ in range(pipelined.CONNECTIONS):
                conn, _ = listener.accept()
                conn.recv(100)
                conn.sendall(answer(b"{}"))
                conn.close()

        threading.Thread(target=close_after_one, daemon=True).start()
        # A cut answer, or a reset (the engine closed with requests unread): either way, raised.
        with pytest.raises((PipelineError, OSError)):
            get_json_many(path, [f"/p/{n}" for n in range(10)], "Berth-test", timeout=5)
    with pytest.raises(OSError):
        get_json_many(str(tmp_path / "nothing.sock"), ["/a", "/b"], "Berth-test", timeout=5)
