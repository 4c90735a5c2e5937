"""Berth's gunicorn worker (app.server.worker): one write per response, connections shared out."""

import os
import select
import signal
import socket
import time
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from app.server import worker as gunicorn_worker
from app.server.worker import ONE_WRITE_MAX, STALE_SECONDS, ConnectionBoard, OneWriteResponse
from tests.conftest import _token_entries
from tests.support.gunicorn import gunicorn_server, wait_for

JSON = [("Content-Type", "application/json"), ("Content-Length", "11")]


class RecordingSocket:
    """What a response hands the socket, one entry per sendall()."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def serve(response_class, request: bytes, headers, parts) -> list[bytes]:
    """The writes ``response_class`` makes answering ``request`` with ``parts`` (as gthread)."""
    cfg = Config()
    req = next(RequestParser(cfg, iter([request]), ("127.0.0.1", 1)))
    sock = RecordingSocket()
    resp, _ = wsgi.create(
        req, sock, ("127.0.0.1", 1), ("127.0.0.1", 80), cfg, response_class=response_class
    )
    resp.start_response("200 OK", headers)
    for part in parts:
        resp.write(part)
    resp.close()
    return [_without_date(w) for w in sock.writes]


def _without_date(data: bytes) -> bytes:
    head, sep, rest = data.partition(b"\r\nDate: ")
    return head + sep + rest.partition(b"\r\n")[2] if sep else data


GET = b"GET /v1/images/x HTTP/1.1\r\nHost: berth\r\n\r\n"


def test_a_json_answer_leaves_in_one_write_with_the_bytes_gunicorn_would_send():
    ours = serve(OneWriteResponse, GET, JSON, [b'{"id": "x"}'])
    theirs = serve(wsgi.Response, GET, JSON, [b'{"id": "x"}'])
    assert len(theirs) == 2  # gunicorn's own: the headers, then the body
    assert ours == [b"".join(theirs)]
    assert ours[0].endswith(b'\r\n\r\n{"id": "x"}')


def test_a_chunked_body_starts_with_the_headers_and_ends_as_gunicorn_ends_it():
    headers = [("Content-Type", "text/plain")]  # no length: HTTP/1.1 chunks
    ours = serve(OneWriteResponse, GET, headers, [b"abc", b"de"])
    theirs = serve(wsgi.Response, GET, headers, [b"abc", b"de"])
    assert b"".join(ours) == b"".join(theirs)
    assert ours[0].endswith(b"\r\n\r\n3\r\nabc\r\n")
    assert ours[1:] == [b"2\r\nde\r\n", b"0\r\n\r\n"]


def test_a_large_first_piece_follows_the_headers_instead_of_being_copied_onto_them():
    big = b"x" * (ONE_WRITE_MAX + 1)
    headers = [("Content-Length", str(len(big)))]
    ours = serve(OneWriteResponse, GET, headers, [big])
    assert ours == serve(wsgi.Response, GET, headers, [big])
    assert len(ours) == 2 and ours[1] == big


def test_an_empty_first_write_sends_the_headers_at_once():
    # A relayed archive writes nothing through the response, then the tar to the socket itself.
    writes = serve(OneWriteResponse, GET, [("Content-Type", "application/x-tar")], [b""])
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\n")
    assert writes[1:] == [b"0\r\n\r\n"]


def test_head_and_bodiless_answers_send_their_headers_alone():
    head = b"HEAD /v1/images/x HTTP/1.1\r\nHost: berth\r\n\r\n"
    writes = serve(OneWriteResponse, head, JSON, [b'{"id": "x"}'])
    assert writes == serve(wsgi.Response, head, JSON, [b'{"id": "x"}'])
    assert len(writes) == 1 and writes[0].endswith(b"Content-Length: 11\r\n\r\n")
    assert serve(OneWriteResponse, GET, [("Content-Length", "0")], []) == serve(
        wsgi.Response, GET, [("Content-Length", "0")], []
    )


def test_the_board_names_the_fewest_connections_among_the_other_live_workers():
    board = ConnectionBoard(slots=4)
    first, second, third = board.claim(set()), board.claim({0}), board.claim({0, 1})
    assert (first, second, third) == (0, 1, 2)
    now = time.monotonic()
    assert board.fewest_elsewhere(first, now) == 0  # booting workers count, with nothing yet
    board.write(first, 9, now)
    board.write(second, 4, now)
    board.write(third, 6, now)
    assert board.fewest_elsewhere(first, now) == 4
    assert board.fewest_elsewhere(second, now) == 6
    board.release(second)
    assert board.fewest_elsewhere(first, now) == 6
    # A worker that has not written for a while (stopped, hung) no longer counts.
    assert board.fewest_elsewhere(first, now + STALE_SECONDS + 0.1) is None
    assert board.claim({0, 1, 2, 3}) is None


def _ask_health(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"GET /v1/health HTTP/1.1\r\nHost: berth\r\n\r\n")
    return conn


def _polling(pid: int) -> bool:
    return Path(f"/proc/{pid}/wchan").read_text() == "do_epoll_wait"


def _answered(conns: list[socket.socket]) -> int:
    return len(select.select(conns, [], [], 0)[0])


def test_a_worker_leaves_new_connections_to_the_others_past_its_share(harness, tmp_path):
    # With the other worker stopped (SIGSTOP), the one running takes `threads` connections
    # more than the other holds (nothing), then leaves the rest queued for it; once the stopped
    # one has not been seen for STALE_SECONDS, the running one takes them all. gthread alone
    # would take all eight at once.
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, workers=2, threads=2, tokens=_token_entries()) as server:
        # Both booted: each waits in its loop's poll, having written the board just before.
        assert wait_for(lambda: len(server.worker_pids()) == 2)
        assert wait_for(lambda: all(_polling(pid) for pid in server.worker_pids()))
        stopped = server.worker_pids()[1]
        port = int(server.url.rsplit(":", 1)[1])
        os.kill(stopped, signal.SIGSTOP)
        conns: list[socket.socket] = []
        try:
            conns = [_ask_health(port) for _ in range(8)]
            time.sleep(1.0)
            # Accepted while holding no more than 0 + 2: three, or one more for each connection
            # the stopped worker still held (the start-up check's, if its close was not yet seen).
            assert 3 <= _answered(conns) <= 4
            assert wait_for(lambda: _answered(conns) == 8, STALE_SECONDS + 5)
            assert all(c.recv(4096).startswith(b"HTTP/1.1 200 OK") for c in conns)
        finally:
            os.kill(stopped, signal.SIGCONT)
            for conn in conns:
                conn.close()


class FakeServer:
    def __init__(self, reuse_port: bool, slots: list[int]) -> None:
        self.cfg = SimpleNamespace(reuse_port=reuse_port)
        self.WORKERS = {pid: SimpleNamespace(board_slot=slot) for pid, slot in enumerate(slots)}


def test_a_worker_beyond_the_board_accepts_without_looking():
    full = FakeServer(False, list(range(gunicorn_worker.BOARD_SLOTS)))
    worker = SimpleNamespace()
    gunicorn_worker.give_slot(full, worker)
    assert worker.board_slot is None
    gunicorn_worker.free_slot(full, worker)  # nothing to free, nothing raised


def test_with_a_socket_per_worker_no_worker_leaves_connections_to_others():
    # Connections queued on a worker's own socket (reuse_port) can only be taken by it.
    worker = SimpleNamespace()
    gunicorn_worker.give_slot(FakeServer(True, []), worker)
    assert worker.board_slot is None
