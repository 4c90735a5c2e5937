"""Archive transfers under a real gunicorn and the real engine: however many stream, at any
speed, short requests answer promptly, and a transfer past capacity is 503 at once
(app.http.transfers)."""

from __future__ import annotations

import json
import re
import socket
import time
from urllib.parse import quote

import requests

from app import create_app
from app.http.accessors import services
from tests.support.gunicorn import gunicorn_server
from tests.support.images import blob_image
from tests.support.tokens import TOKENS, auth, token_entries

# Larger than what the kernel buffers between the engine and a client that does not read, so
# a download holds its transfer for as long as the client reads slowly.
IMAGE_MIB = 48
TAR = "application/x-tar"


def _ask(port: int, request: bytes) -> tuple[socket.socket, bytes, float]:
    """Send ``request`` on a client with a small receive buffer; the answer's head (with its
    body, when it is not a 200 and says its length), and how long it took to come."""
    conn = socket.socket()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.connect(("127.0.0.1", port))
    conn.settimeout(10)
    started = time.monotonic()
    conn.sendall(request)
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(1024)
        if not data:
            break
        head += data
    fields, _, body = head.partition(b"\r\n\r\n")
    length = re.search(rb"\r\ncontent-length: *(\d+)", fields.lower())
    if not fields.startswith(b"HTTP/1.1 200 ") and length:
        while len(body) < int(length.group(1)):
            data = conn.recv(1024)
            if not data:
                break
            body += data
            head += data
    return conn, head, time.monotonic() - started


def _download(port: int, ref: str) -> tuple[socket.socket, bytes, float]:
    return _ask(
        port,
        f"GET /v1/images/{quote(ref, safe='/:')}/archive HTTP/1.1\r\nHost: berth\r\n"
        f"Authorization: Bearer {TOKENS['read']}\r\n\r\n".encode(),
    )


def _is_refused_for_capacity(head: bytes) -> bool:
    status, _, rest = head.partition(b"\r\n")
    headers = rest.lower()
    return (
        status.startswith(b"HTTP/1.1 503 ")
        and b"retry-after: " in headers
        and b"too_many_transfers" in head.lower()
    )


def _short_requests_answer_promptly(url: str, ref: str, rounds: int = 5) -> list[float]:
    auth = {"Authorization": f"Bearer {TOKENS['read']}"}
    took = []
    for _ in range(rounds):
        for path in ("/v1/health", f"/v1/images/{ref}"):
            started = time.monotonic()
            answer = requests.get(url + path, headers=auth, timeout=5)
            took.append(time.monotonic() - started)
            assert answer.status_code == 200, answer.text
        time.sleep(0.1)
    return took


def _sip(conns: list[socket.socket]) -> None:
    """Read a few bytes from each download: slow, not stopped."""
    for conn in conns:
        conn.recv(64)


def test_twenty_slow_downloads_leave_health_and_cached_inspect_prompt_and_more_are_503(
    harness, docker_client, base_image, tmp_path
):
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_MAX_TRANSFERS": "10",
    }
    with (
        blob_image(docker_client, base_image, IMAGE_MIB, "/dev/zero", "berth-slow") as ref,
        gunicorn_server(env, workers=2, threads=2, tokens=token_entries()) as server,
    ):
        port = int(server.url.rsplit(":", 1)[1])
        auth = {"Authorization": f"Bearer {TOKENS['read']}"}
        assert requests.get(f"{server.url}/v1/images/{ref}", headers=auth, timeout=10).ok
        streaming: list[socket.socket] = []
        try:
            for _ in range(40):  # two workers of ten slots: twenty, the refused ones retried
                if len(streaming) == 20:
                    break
                conn, head, took = _download(port, ref)
                if head.startswith(b"HTTP/1.1 200 "):
                    streaming.append(conn)
                else:
                    assert _is_refused_for_capacity(head) and took < 1.0, head
                    conn.close()
            assert len(streaming) == 20
            _sip(streaming)
            took = _short_requests_answer_promptly(server.url, ref)
            assert max(took) < 1.0, took
            # Past capacity: refused at once, with the time to come back.
            conn, head, took = _download(port, ref)
            conn.close()
            assert _is_refused_for_capacity(head), head
            assert took < 1.0
            _sip(streaming)
            # A download whose client leaves gives its slot back.
            streaming.pop().close()
            for _ in range(40):
                conn, head, took = _download(port, ref)
                if head.startswith(b"HTTP/1.1 200 "):
                    streaming.append(conn)
                    break
                conn.close()
                time.sleep(0.2)
            else:
                raise AssertionError("no slot came back after a client left")
            assert max(_short_requests_answer_promptly(server.url, ref, rounds=2)) < 1.0
        finally:
            for conn in streaming:
                conn.close()


def test_slow_uploads_take_transfer_slots_too_and_leave_short_requests_prompt(
    harness, tmp_path, images
):
    _, ref = images.image("true")
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_MAX_TRANSFERS": "2",
    }
    upload = (
        "POST /v1/archives HTTP/1.1\r\nHost: berth\r\n"
        f"Authorization: Bearer {TOKENS['write']}\r\n"
        "Content-Type: application/x-tar\r\nContent-Length: 10485760\r\n\r\n"
    ).encode()
    with gunicorn_server(env, workers=1, threads=2, tokens=token_entries()) as server:
        port = int(server.url.rsplit(":", 1)[1])
        uploads = []
        try:
            for _ in range(2):
                conn = socket.create_connection(("127.0.0.1", port))
                conn.sendall(upload + b"\0" * 512)
                uploads.append(conn)
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:  # a byte a second: slow, not stalled
                for conn in uploads:
                    conn.sendall(b"\0")
                assert max(_short_requests_answer_promptly(server.url, ref, rounds=1)) < 1.0
                time.sleep(0.5)
            conn, head, took = _ask(port, upload)
            conn.close()
            assert _is_refused_for_capacity(head), head
            assert took < 1.0
            body = head.partition(b"\r\n\r\n")[2]
            if body.startswith(b"{"):
                assert json.loads(body)["code"] == "TOO_MANY_TRANSFERS"
        finally:
            for conn in uploads:
                conn.close()


def test_a_transfer_refused_before_its_body_or_ended_by_its_client_gives_its_slot_back(
    config, images
):
    _, ref = images.image("true")
    app = create_app({**config, "BERTH_MAX_TRANSFERS": 1})
    try:
        client = app.test_client()
        for _ in range(3):  # each refused upload took the one slot and gave it back
            empty = client.post(
                "/v1/archives", data=b"", headers={**auth("write"), "Content-Type": TAR}
            )
            assert empty.status_code == 400 and empty.json["code"] == "INVALID_ARCHIVE"
        held = client.get(f"/v1/images/{ref}/archive", headers=auth("read"), buffered=False)
        assert held.status_code == 200
        refused = client.get(f"/v1/images/{ref}/archive", headers=auth("read"))
        assert refused.status_code == 503 and refused.json["code"] == "TOO_MANY_TRANSFERS"
        assert refused.headers["Retry-After"].isdigit()
        assert client.head(f"/v1/images/{ref}/archive", headers=auth("read")).status_code == 200
        held.close()  # the client leaves mid-way
        again = client.get(f"/v1/images/{ref}/archive", headers=auth("read"))
        assert again.status_code == 200 and len(again.data) > 1024
    finally:
        services(app).engines.close()


def _open_event_stream(port: int) -> socket.socket:
    conn, head, _ = _ask(
        port,
        b"GET /v1/events HTTP/1.1\r\nHost: berth\r\n"
        + f"Authorization: Bearer {TOKENS['read']}\r\n\r\n".encode(),
    )
    assert head.startswith(b"HTTP/1.1 200 "), head
    return conn


def test_long_requests_holding_every_thread_of_theirs_leave_short_requests_their_own(
    harness, tmp_path
):
    # gunicorn's threads (the long requests' own: app.server.worker) set to 2 and both held by
    # open event streams; BERTH_THREADS=1 of its own still answers health and an image listing.
    # In one pool of those 2 threads, the short requests would wait for a stream to end.
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_MAX_EVENT_STREAMS": "2",
        "GUNICORN_CMD_ARGS": "--threads 2",
    }
    with gunicorn_server(env, workers=1, threads=1, tokens=token_entries()) as server:
        streams = [_open_event_stream(server.port) for _ in range(2)]
        try:
            for _ in range(3):
                for path in ("/v1/health", "/v1/images"):
                    answer = requests.get(server.url + path, headers=auth("read"), timeout=5)
                    assert answer.status_code == 200, answer.text
        finally:
            for conn in streams:
                conn.close()
