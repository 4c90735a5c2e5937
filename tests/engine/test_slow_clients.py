"""Slow clients under a real gunicorn: a late request head or a stalled body is dropped, and
holds no thread meanwhile (app.server.worker)."""

from __future__ import annotations

import select
import socket
import subprocess
import time

import requests

from tests.support.gunicorn import gunicorn_server
from tests.support.tokens import TOKENS, token_entries

HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 2.0
SLACK = 2.0  # the worker's loop looks at deadlines at least once a second


def _env(harness, tmp_path, **settings: float) -> dict[str, str]:
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    return env | {name: str(value) for name, value in settings.items()}


def _health_seconds(url: str, **kwargs) -> float:
    started = time.monotonic()
    answer = requests.get(url + "/v1/health", timeout=5, **kwargs)
    assert answer.status_code == 200
    return time.monotonic() - started


def _closed(conn: socket.socket) -> bool:
    """Whether the server closed ``conn`` (what it sent before is read and dropped)."""
    try:
        while select.select([conn], [], [], 0)[0]:
            if not conn.recv(65536):
                return True
    except OSError:
        return True
    return False


def test_fifty_clients_sending_a_header_line_every_two_seconds_are_dropped_and_starve_nothing(
    harness, tmp_path
):
    env = _env(harness, tmp_path, BERTH_HEADER_TIMEOUT=HEADER_TIMEOUT)
    with gunicorn_server(env, workers=2, threads=4, tokens=token_entries()) as server:
        port = int(server.url.rsplit(":", 1)[1])
        slow = []
        for _ in range(50):
            conn = socket.create_connection(("127.0.0.1", port))
            conn.sendall(b"GET /v1/health HTTP/1.1\r\n")
            slow.append(conn)
        opened = time.monotonic()
        closed_at: dict[int, float] = {}
        latencies = []
        lines = 0
        try:
            while len(closed_at) < len(slow) and time.monotonic() < opened + HEADER_TIMEOUT + 8:
                if time.monotonic() >= opened + 2 * (lines + 1):
                    lines += 1
                    for i, conn in enumerate(slow):
                        if i not in closed_at:
                            try:
                                conn.sendall(b"X-Slow-%d: %d\r\n" % (lines, i))
                            except OSError:
                                closed_at[i] = time.monotonic()
                for i, conn in enumerate(slow):
                    if i not in closed_at and _closed(conn):
                        closed_at[i] = time.monotonic()
                latencies.append(_health_seconds(server.url))
                time.sleep(0.3)
        finally:
            for conn in slow:
                conn.close()
        assert len(closed_at) == len(slow), f"{len(slow) - len(closed_at)} slow clients kept"
        assert max(closed_at.values()) - opened < HEADER_TIMEOUT + SLACK
        assert len(latencies) >= 5 and max(latencies) < 1.0, latencies
        # An ordinary client is still served as before, with keep-alive.
        with requests.Session() as session:
            for _ in range(3):
                assert session.get(server.url + "/v1/health", timeout=5).status_code == 200


def test_a_stalled_upload_body_is_dropped(harness, tmp_path):
    env = _env(harness, tmp_path, BERTH_BODY_TIMEOUT=BODY_TIMEOUT)
    with gunicorn_server(env, workers=1, threads=2, tokens=token_entries()) as server:
        port = int(server.url.rsplit(":", 1)[1])
        stalled = []
        for _ in range(3):  # more than the worker's short-request threads
            conn = socket.create_connection(("127.0.0.1", port))
            conn.sendall(
                b"POST /v1/archives HTTP/1.1\r\nHost: berth\r\n"
                b"Authorization: Bearer " + TOKENS["write"].encode() + b"\r\n"
                b"Content-Type: application/x-tar\r\nContent-Length: 1048576\r\n\r\n" + b"\0" * 1024
            )
            stalled.append(conn)
        sent = time.monotonic()
        answers = [b""] * len(stalled)
        ended = [False] * len(stalled)
        while not all(ended) and time.monotonic() < sent + BODY_TIMEOUT + 10:
            for i, conn in enumerate(stalled):
                if not ended[i] and select.select([conn], [], [], 0.05)[0]:
                    data = conn.recv(65536)
                    answers[i] += data
                    ended[i] = not data
        waited = time.monotonic() - sent
        for conn in stalled:
            conn.close()
        assert all(ended), "a stalled upload kept its connection"
        assert waited < BODY_TIMEOUT + 2 * SLACK + 2
        for answer in answers:  # answered, then closed: the load never started
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
            assert b'"code":"INVALID_ARCHIVE"' in answer.replace(b" ", b"")
        assert _health_seconds(server.url) < 1.0


def test_a_stalled_json_body_is_408_and_changes_nothing(harness, tmp_path, docker_client):
    env = _env(harness, tmp_path, BERTH_BODY_TIMEOUT=BODY_TIMEOUT)
    tags_before = sorted(t for image in docker_client.images.list() for t in image.tags)
    with gunicorn_server(env, workers=1, threads=2, tokens=token_entries()) as server:
        port = int(server.url.rsplit(":", 1)[1])
        conn = socket.create_connection(("127.0.0.1", port))
        body = b'{"repository": "berth-stalled", "tag": "never"}'
        conn.sendall(
            b"POST /v1/images/" + harness["base_image"].encode() + b"/tags HTTP/1.1\r\n"
            b"Host: berth\r\nAuthorization: Bearer " + TOKENS["write"].encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (len(body) + 10)
            + body
        )
        conn.settimeout(BODY_TIMEOUT + 2 * SLACK + 5)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        conn.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b'"code":"REQUEST_TIMEOUT"' in answer.replace(b" ", b"")
    tags_after = sorted(t for image in docker_client.images.list() for t in image.tags)
    assert tags_after == tags_before


def test_tls_is_served_with_the_cert_and_key_given_and_slow_handshakes_are_dropped(
    harness, tmp_path
):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "BERTH_TLS_CERT": str(cert),
        "BERTH_TLS_KEY": str(key),
    }
    with gunicorn_server(env, workers=1, threads=2, tokens=token_entries(), tls=True) as server:
        assert server.url.startswith("https://")
        assert f"Berth listens on {server.url}" in server.output
        port = int(server.url.rsplit(":", 1)[1])
        # Clients that open a connection and never finish the handshake (or send nothing).
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        for conn in idle[:5]:
            conn.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
        opened = time.monotonic()
        try:
            assert _health_seconds(server.url, verify=str(cert)) < 1.0
            auth = {"Authorization": f"Bearer {TOKENS['read']}"}
            with requests.Session() as session:  # two requests on one kept-alive connection
                for _ in range(2):
                    listed = session.get(
                        server.url + "/v1/images", headers=auth, timeout=5, verify=str(cert)
                    )
                    assert listed.status_code == 200 and "images" in listed.json()
            refused = requests.get(server.url + "/v1/images", timeout=5, verify=str(cert))
            assert refused.status_code == 401
            try:  # plain HTTP is not served on the TLS port
                plain = requests.get(server.url.replace("https", "http") + "/v1/health", timeout=5)
                assert plain.status_code != 200
            except requests.ConnectionError:
                pass  # the server closed the connection: what it read was no ClientHello
        finally:
            while time.monotonic() < opened + HEADER_TIMEOUT + SLACK:
                if all(_closed(conn) for conn in idle):
                    break
                time.sleep(0.2)
            assert all(_closed(conn) for conn in idle)
            for conn in idle:
                conn.close()
