"""What scripts rely on, against the engine: ``Prefer: wait=N`` and ``Idempotency-Key`` on
async POSTs, one-sentence 404 details, downloads without a length the engine does not know, and
downloads that fail cleanly under ``curl --fail -OJ``."""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from app import errors
from app.jobs import TERMINAL
from tests.support.gunicorn import gunicorn_server
from tests.support.registry import served_digest
from tests.support.tokens import token_entries

# --------------------------------------------------------------------------- async POSTs


@pytest.fixture
def image(images):
    image_id, ref = images.image(f"echo {uuid.uuid4().hex} > /marker")
    return {"id": image_id, "ref": ref}


@pytest.fixture
def open_registry(harness):
    return harness["registries"]["open"]["address"]


def _push(client, headers, image, target, key=None, scope="push", prefer_="respond-async"):
    extra = {"Prefer": prefer_}
    if key is not None:
        extra["Idempotency-Key"] = key
    return client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": target},
        headers={**headers(scope), **extra},
    )


def test_async_push_with_prefer_wait_answers_the_ended_job(client, headers, image, open_registry):
    name = f"wait{uuid.uuid4().hex[:10]}/app"
    answer = _push(
        client, headers, image, f"{open_registry}/{name}:1", prefer_="respond-async, wait=60"
    )
    assert answer.status_code == 202
    assert answer.headers["Preference-Applied"] == "respond-async, wait=60"
    job = answer.get_json()
    assert job["state"] == "succeeded", job
    assert job["result"]["digest"] == served_digest(open_registry, name, "1")
    assert answer.headers["Location"] == f"/v1/jobs/{job['id']}"


def test_idempotency_key_gives_a_retry_the_same_job(client, headers, image, open_registry):
    target = f"{open_registry}/idem{uuid.uuid4().hex[:10]}/app:1"
    key = str(uuid.uuid4())
    first = _push(client, headers, image, target, key)
    again = _push(client, headers, image, target, key)
    assert first.status_code == again.status_code == 202
    assert first.headers["Location"] == again.headers["Location"]
    assert first.get_json()["id"] == again.get_json()["id"]
    jobs = client.get("/v1/jobs?kind=push", headers=headers("push")).get_json()["jobs"]
    assert [j["id"] for j in jobs if j["target"] == target] == [first.get_json()["id"]]

    other = _push(client, headers, image, target + "x", key)
    assert other.status_code == 422
    assert other.get_json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert other.get_json()["title"] == errors.IdempotencyKeyReused.title

    elsewhere = _push(client, headers, image, target, key, scope="admin")  # another token's key
    assert elsewhere.status_code == 202
    assert elsewhere.headers["Location"] != first.headers["Location"]
    for location in (first.headers["Location"], elsewhere.headers["Location"]):
        done = client.get(location, headers={**headers("admin"), "Prefer": "wait=60"})
        assert done.get_json()["state"] in TERMINAL


def test_idempotency_key_must_be_visible_ascii(client, headers, image, open_registry):
    answer = _push(client, headers, image, f"{open_registry}/x/app:1", "has space")
    assert answer.status_code == 400
    assert answer.get_json()["code"] == "VALIDATION_FAILED"


def test_idempotent_async_load_keeps_one_job_and_no_spooled_body(
    client, headers, config, image, docker_client, images
):
    archive = b"".join(docker_client.api.get_image(image["ref"]))
    docker_client.api.remove_image(image["ref"], force=True)
    sent = {
        **headers("write"),
        "Prefer": "respond-async",
        "Content-Type": "application/x-tar",
        "Idempotency-Key": uuid.uuid4().hex,
    }
    first = client.post("/v1/archives", data=archive, headers=sent)
    again = client.post("/v1/archives", data=archive, headers=sent)
    assert first.status_code == again.status_code == 202, again.get_json()
    assert first.headers["Location"] == again.headers["Location"]
    images.track(image["id"])
    done = client.get(first.headers["Location"], headers={**headers("write"), "Prefer": "wait=60"})
    assert done.get_json()["state"] == "succeeded", done.get_json()
    other = client.post("/v1/archives", data=archive + b"\0" * 1024, headers=sent)
    assert other.status_code == 422
    spool = Path(config["BERTH_DATA_DIR"]) / "spool"
    assert not list(spool.glob("*"))


# --------------------------------------------------------------------------- error details


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/v1/images/nope:1", "No such image: nope:1"),
        ("/v1/images/nope:1/history", "No such image: nope:1"),
        ("/v1/images/nope:1/archive", "No such image: nope:1"),
        ("/v1/containers/nope-berth/export", "No such container: nope-berth"),
    ],
)
def test_not_found_detail_says_it_once(client, headers, path, detail):
    answer = client.get(path, headers=headers("admin"))
    assert answer.status_code == 404
    assert answer.get_json()["detail"] == detail


# --------------------------------------------------------------------------- curl -OJ


def test_failed_download_with_curl_fail_leaves_no_file(harness, tmp_path):
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path / "data")}
    token = token_entries()[0]
    with gunicorn_server(env, tokens=[{**token, "scopes": ["admin"]}]) as server:
        url = f"{server.url}/v1/images/nope:1/archive"
        auth = f"Authorization: Bearer {token['token']}"
        problem = requests.get(url, headers={"Authorization": auth.split(": ", 1)[1]}, timeout=10)
        assert problem.status_code == 404
        assert "Content-Disposition" not in problem.headers
        plain, failing = tmp_path / "plain", tmp_path / "failing"
        for where in (plain, failing):
            where.mkdir()
        # Without --fail curl writes any answer to a file named after the URL: the problem.
        run = subprocess.run(
            ["curl", "-sS", "-OJ", "-H", auth, url], cwd=plain, capture_output=True, timeout=30
        )
        assert run.returncode == 0 and b"IMAGE_NOT_FOUND" in (plain / "archive").read_bytes()
        # With --fail (as the docs say) it exits 22 and leaves nothing behind.
        run = subprocess.run(
            ["curl", "-sS", "--fail", "-OJ", "-H", auth, url],
            cwd=failing,
            capture_output=True,
            timeout=30,
        )
        assert run.returncode == 22
        assert list(failing.iterdir()) == []


# --------------------------------------------------------------------------- Content-Length


def test_downloads_carry_no_length_since_the_engine_knows_none(client, headers, harness, images):
    _, ref = images.image("true")
    engine = socket.socket(socket.AF_UNIX)
    engine.connect(harness["docker_host"].removeprefix("unix://"))
    with engine:
        engine.sendall(f"GET /images/{ref}/get HTTP/1.1\r\nHost: d\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += engine.recv(4096)
    engine_head = head.split(b"\r\n\r\n")[0].lower()
    assert b"transfer-encoding: chunked" in engine_head  # made while sent: no size ahead
    assert b"content-length" not in engine_head
    answer = client.get(f"/v1/images/{ref}/archive", headers=headers("read"))
    assert answer.status_code == 200 and len(answer.data) > 1024
    assert "Content-Length" not in answer.headers
