"""Archive streams through a real gunicorn: clients that hang up, engines that fail mid-stream,
chunked and curl uploads, and the upload limit, with the engine's connections counted."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import shutil
import subprocess
import tarfile

import pytest
import requests
import urllib3.exceptions

from tests.support.gunicorn import gunicorn_server, wait_for
from tests.support.harness import harness_module, load_state
from tests.support.images import blob_image, unique
from tests.support.needs import need
from tests.support.tokens import TOKENS, token_entries

BIG_MIB = 96
UPLOAD_LIMIT = 4 * 1024 * 1024
READ = {"Authorization": f"Bearer {TOKENS['read']}"}
EXPORT = {"Authorization": f"Bearer {TOKENS['export']}"}
WRITE = {"Authorization": f"Bearer {TOKENS['write']}", "Content-Type": "application/x-tar"}


def engine_connections(harness) -> int:
    """Connections the engine holds open on its socket (its accepted sockets share the path)."""
    path = harness["docker_host"].removeprefix("unix://")
    with open("/proc/net/unix") as table:
        return sum(1 for line in table if line.split()[-1:] == [path]) - 1  # minus the listener


def image_list(docker_client):
    return sorted((i["Id"], tuple(i.get("RepoTags") or [])) for i in docker_client.api.images())


@pytest.fixture(scope="module")
def big_image(docker_client, base_image):
    """A tagged image with one layer of random data, BIG_MIB MiB."""
    with blob_image(docker_client, base_image, BIG_MIB, "/dev/urandom", "berth-big") as ref:
        yield ref


@pytest.fixture(scope="module")
def server(harness, tmp_path_factory):
    """One gunicorn worker with one thread: a stuck request would block every later one."""
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path_factory.mktemp("gunicorn")),
        "BERTH_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
    }
    with gunicorn_server(env, workers=1, threads=1, tokens=token_entries()) as started:
        yield started


def small_archive_removed(docker_client, base_image) -> tuple[str, str, bytes]:
    repo = unique()
    container = docker_client.containers.create(base_image, ["true"], network_mode="none")
    image = container.commit(repository=repo, tag="1")
    container.remove()
    archive = b"".join(docker_client.api.get_image(f"{repo}:1"))
    docker_client.api.remove_image(image.id, force=True)
    return image.id, f"{repo}:1", archive


def sent_lines(output: str) -> list[dict]:
    """The "stream sent" log records gunicorn's workers wrote (one per download in full)."""
    records = []
    for line in output.splitlines():
        if '"stream sent"' in line:
            records.append(json.loads(line[line.index("{") :]))
    return records


def bytes_sent_metric(server) -> float:
    metrics = requests.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKENS['metrics']}"}
    )
    assert metrics.status_code == 200
    for line in metrics.text.splitlines():
        if line.startswith('berth_stream_bytes_total{direction="out"}'):
            return float(line.split()[-1])
    raise AssertionError("no berth_stream_bytes_total for out")


def test_downloads_are_relayed_byte_for_byte_over_http_1_1_and_1_0(
    server, big_image, docker_client, base_image
):
    expected, big_size = hashlib.sha256(), 0
    for chunk in docker_client.api.get_image(big_image, chunk_size=1024 * 1024):
        expected.update(chunk)
        big_size += len(chunk)
    small = b"".join(docker_client.api.get_image(base_image))
    before = len(sent_lines(server.output))
    bytes_out = bytes_sent_metric(server)

    # Chunked (HTTP/1.1), two downloads on one kept-alive connection: the framing holds.
    with requests.Session() as session:
        for ref in (big_image, base_image):
            got = session.get(f"{server.url}/v1/images/{ref}/archive", headers=READ, timeout=60)
            assert got.status_code == 200 and got.headers["Transfer-Encoding"] == "chunked"
            if ref == big_image:
                assert hashlib.sha256(got.content).hexdigest() == expected.hexdigest()
            else:
                assert got.content == small
    # HTTP/1.0: no chunks; the body ends when the connection closes.
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection._http_vsn, connection._http_vsn_str = 10, "HTTP/1.0"
    connection.request("GET", f"/v1/images/{base_image}/archive", headers=READ)
    answer = connection.getresponse()
    assert answer.status == 200 and answer.version == 10
    assert "Transfer-Encoding" not in answer.headers
    assert answer.read() == small
    connection.close()

    assert wait_for(lambda: len(sent_lines(server.output)) == before + 3, 5)
    records = sent_lines(server.output)[before:]
    assert all(r["relayed"] is True and r["stream"] == "save" for r in records)
    assert sorted(r["bytes"] for r in records) == sorted([len(small), len(small), big_size])
    # Bytes that never pass through Python are counted all the same.
    assert bytes_sent_metric(server) - bytes_out >= big_size + 2 * len(small)


def test_an_export_is_relayed_byte_for_byte(server, docker_client, base_image):
    container = docker_client.containers.create(base_image, ["true"], network_mode="none")
    try:
        expected = b"".join(docker_client.api.export(container.id))
        got = requests.get(
            f"{server.url}/v1/containers/{container.id}/export", headers=EXPORT, timeout=60
        )
        assert got.status_code == 200
        assert got.content == expected
        assert wait_for(lambda: '"stream": "export"' in server.output, 5)
    finally:
        container.remove()


def test_client_hanging_up_mid_download_leaves_no_stuck_worker_or_engine_stream(
    server, big_image, harness, docker_client, base_image
):
    url = f"{server.url}/v1/images/{big_image}/archive"
    assert requests.get(f"{server.url}/v1/images/{big_image}", headers=READ).status_code == 200
    docker_client.api.info()  # the test's own engine connection is open before counting
    baseline = engine_connections(harness)

    download = requests.get(url, headers=READ, stream=True, timeout=30)
    assert download.status_code == 200
    assert len(download.raw.read(4 * 1024 * 1024)) == 4 * 1024 * 1024
    assert engine_connections(harness) == baseline + 1  # the save stream
    download.close()  # hang up with ~90 MiB unread

    assert wait_for(lambda: engine_connections(harness) == baseline), "engine stream left open"
    assert wait_for(lambda: "stream closed before its end" in server.output, 5)
    # The only worker thread is free: the next requests are served, a download in full.
    again = requests.get(f"{server.url}/v1/images/{base_image}/archive", headers=READ, timeout=30)
    assert again.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(again.content)) as archive:
        assert "manifest.json" in archive.getnames()
    # HEAD makes the same checks, and does not make the engine produce the archive.
    head = requests.head(url, headers=READ, timeout=30)
    assert head.status_code == 200 and head.headers["Content-Type"] == "application/x-tar"
    assert head.elapsed.total_seconds() < 1  # no archive staged by the engine
    missing = requests.head(f"{server.url}/v1/images/{unique()}:1/archive", headers=READ)
    assert missing.status_code == 404


def test_engine_failure_mid_download_cuts_the_response(server, big_image, base_image):
    harness_tool = harness_module()
    download = requests.get(
        f"{server.url}/v1/images/{big_image}/archive", headers=READ, stream=True, timeout=60
    )
    assert download.status_code == 200
    received = len(download.raw.read(2 * 1024 * 1024))
    harness_tool.stop_engine(load_state())
    try:
        with pytest.raises(urllib3.exceptions.ProtocolError):  # the chunked body breaks off
            while chunk := download.raw.read(1024 * 1024):
                received += len(chunk)
    finally:
        harness_tool.start_engine(load_state())
    assert received < BIG_MIB * 1024 * 1024  # cut, never ended as if complete
    assert wait_for(lambda: "engine stream failed; response cut" in server.output, 5)
    again = requests.get(f"{server.url}/v1/images/{base_image}/archive", headers=READ, timeout=30)
    assert again.status_code == 200 and tarfile.open(fileobj=io.BytesIO(again.content))


def test_chunked_and_curl_uploads_load_through_gunicorn(server, docker_client, base_image):
    image_id, ref, archive = small_archive_removed(docker_client, base_image)

    def chunks():
        for i in range(0, len(archive), 100_000):
            yield archive[i : i + 100_000]

    loaded = requests.post(f"{server.url}/v1/archives", data=chunks(), headers=WRITE, timeout=60)
    assert loaded.status_code == 201, loaded.text
    assert loaded.json() == {"loaded": [ref], "ids": [image_id]}

    curl = shutil.which("curl")
    need(curl is not None, "no curl")
    docker_client.api.remove_image(image_id, force=True)
    result = subprocess.run(
        [curl, "-sS", "-T", "-", "-X", "POST", "-H", f"Authorization: {WRITE['Authorization']}",
         "-H", "Content-Type: application/x-tar", f"{server.url}/v1/archives"],
        input=archive, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.startswith(b'{"loaded":["' + ref.encode())
    docker_client.api.remove_image(image_id, force=True)


def test_chunked_upload_past_the_limit_is_413_and_loads_nothing(server, docker_client, big_image):
    archive = b"".join(docker_client.api.get_image(big_image))
    before = image_list(docker_client)
    body = archive[: UPLOAD_LIMIT + 32 * 1024]  # a valid start, over the limit

    def chunks():
        for i in range(0, len(body), 256 * 1024):
            yield body[i : i + 256 * 1024]

    response = requests.post(f"{server.url}/v1/archives", data=chunks(), headers=WRITE, timeout=60)
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert image_list(docker_client) == before
    # Announced too large: refused before a byte of the body is read (none is even sent here).
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/archives")
    for name, value in {**WRITE, "Content-Length": str(len(archive))}.items():
        connection.putheader(name, value)
    connection.endheaders()
    announced = connection.getresponse()
    assert announced.status == 413
    assert json.loads(announced.read())["code"] == "PAYLOAD_TOO_LARGE"
    connection.close()
