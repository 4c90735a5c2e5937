"""Jobs: ``Prefer: respond-async``, polling, following, cancelling, and dead workers.

The records live in SQLite, so the tests also run Berth under a real gunicorn with two workers,
and kill a worker in the middle of a job. Long pushes are made deterministic with a proxy in
front of the registry that stalls uploads (``tests.support.stall_proxy``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from app import create_app
from app.http.accessors import services
from app.jobs import JobRunner
from app.jobs.runner import STALE_SECONDS, worker_lost_problem
from app.jobs.store import JobStore
from app.jobs.workers import Worker, is_alive, process_start
from tests.support.gunicorn import gunicorn_server
from tests.support.harness import ROOT
from tests.support.registry import push_image, served_digest
from tests.support.stall_proxy import StallingProxy
from tests.support.tokens import TOKENS, harness_registries, token_entries

ACTIVE = ("queued", "running")


def _name() -> str:
    return f"job{uuid.uuid4().hex[:10]}/app"


def _wait(get, location: str, states=ACTIVE, timeout: float = 60) -> dict:
    """Poll ``location`` until the job leaves ``states``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(location)
        if job["state"] not in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"{location} stayed {states}: {job}")


def _ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line]


@pytest.fixture
def image(images):
    image_id, ref = images.image(f"echo {uuid.uuid4().hex} > /marker")
    return {"id": image_id, "ref": ref}


@pytest.fixture
def big_image(images):
    """An image with an 8 MiB incompressible layer: its upload passes any stall point."""
    image_id, ref = images.image("head -c 8388608 /dev/urandom > /blob")
    return {"id": image_id, "ref": ref}


@pytest.fixture
def open_registry(harness):
    return harness["registries"]["open"]["address"]


@pytest.fixture
def stalling_registry(open_registry):
    host, port = open_registry.rsplit(":", 1)
    with StallingProxy((host, int(port))) as proxy:
        yield proxy


@pytest.fixture
def stall_client(app_allowing, stalling_registry):
    """A client whose outbound policy also allows the stalling proxy."""
    return app_allowing(f"127.0.0.1:{stalling_registry.port}").test_client()


# --------------------------------------------------------------------------- the store


def test_job_transitions_happen_once(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.create("push", "alice", "r/app:1", Worker.current())
    assert job["state"] == "queued" and job["owner"] == "alice"
    assert store.start(job["id"]) and not store.start(job["id"])
    assert store.finish(job["id"], "succeeded", result={"digest": "sha256:x"})
    assert not store.finish(job["id"], "failed", error={"code": "X"})
    done = store.get(job["id"])
    assert done["state"] == "succeeded" and done["result"] == {"digest": "sha256:x"}
    assert done["finished"] >= done["started"] >= done["created"]


def test_cancelling_a_queued_job_ends_it_at_once(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    queued = store.create("pull", "alice", "busybox:latest", Worker.current())
    assert store.request_cancel(queued["id"], {"code": "JOB_CANCELLED"})["state"] == "cancelled"
    assert not store.start(queued["id"])
    running = store.create("pull", "alice", "busybox:latest", Worker.current())
    store.start(running["id"])
    flagged = store.request_cancel(running["id"], {"code": "JOB_CANCELLED"})
    assert flagged["state"] == "running" and flagged["cancel_requested"]
    assert store.cancel_requests([running["id"], queued["id"]]) == [running["id"]]


def test_old_jobs_are_purged_with_their_events(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    old = store.create("push", "a", "x", Worker.current(), now=1000.0)
    store.start(old["id"], now=1001.0)
    store.add_events(old["id"], 1, [{"status": "Pushed"}])
    store.finish(old["id"], "succeeded", result={}, now=1002.0)
    recent = store.create("push", "a", "y", Worker.current())
    store.start(recent["id"])
    store.finish(recent["id"], "failed", error={})
    running = store.create("push", "a", "z", Worker.current(), now=1000.0)
    assert store.purge(older_than=time.time() - 3600) == 1
    assert store.get(old["id"]) is None and store.events(old["id"]) == []
    assert store.get(recent["id"]) is not None
    assert store.get(running["id"]) is not None  # unfinished jobs are never purged


def test_job_of_a_killed_process_is_failed_with_the_reason(tmp_path):
    db = tmp_path / "jobs.sqlite3"
    claim = (
        "import sys, time\n"
        "from app.jobs.store import JobStore\n"
        "from app.jobs.workers import Worker\n"
        "store = JobStore(sys.argv[1])\n"
        "job = store.create('push', 'alice', 'r/app:1', Worker.current())\n"
        "store.start(job['id'])\n"
        "print(job['id'], flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", claim, str(db)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        job_id = child.stdout.readline().strip()
        store = JobStore(db)
        me = Worker.current()
        assert store.reap(me.host, is_alive, worker_lost_problem, STALE_SECONDS) == []
        assert store.get(job_id)["state"] == "running"
        child.send_signal(signal.SIGKILL)
        time.sleep(0.2)  # not waited for yet: a zombie, which counts as dead
        assert store.reap(me.host, is_alive, worker_lost_problem, STALE_SECONDS) == [job_id]
    finally:
        child.kill()
        child.wait()
    job = store.get(job_id)
    assert job["state"] == "failed"
    assert job["error"]["code"] == "JOB_WORKER_LOST"
    assert f"pid {child.pid}" in job["error"]["detail"] and "died" in job["error"]["detail"]


def test_job_of_a_silent_worker_elsewhere_is_failed(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    elsewhere = Worker("other-host/other-boot", os.getpid(), None)
    job = store.create("push", "a", "x", elsewhere)
    store.start(job["id"])
    me = Worker.current()
    assert store.reap(me.host, is_alive, worker_lost_problem, STALE_SECONDS) == []
    later = time.time() + STALE_SECONDS + 1
    assert store.reap(me.host, is_alive, worker_lost_problem, STALE_SECONDS, now=later) == [
        job["id"]
    ]
    assert "has not reported" in store.get(job["id"])["error"]["detail"]


def test_a_recycled_pid_is_not_mistaken_for_the_worker():
    me = os.getpid()
    assert is_alive(me, process_start(me))
    assert not is_alive(me, "1")  # same pid, another start time: another process


# --------------------------------------------------------------------------- async push


def test_async_push_is_202_then_succeeds(client, headers, image, open_registry):
    name = _name()
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{open_registry}/{name}:1"},
        headers={**headers("push"), "Prefer": "respond-async"},
    )
    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "respond-async"
    location = response.headers["Location"]
    body = response.get_json()
    assert location == f"/v1/jobs/{body['id']}"
    assert body["kind"] == "push" and body["state"] in ACTIVE
    assert body["target"] == f"{open_registry}/{name}:1" and body["owner"] == "push-token"

    job = _wait(lambda url: client.get(url, headers=headers("push")).get_json(), location)
    assert job["state"] == "succeeded", job
    assert job["result"]["digest"] == served_digest(open_registry, name, "1")
    assert job["error"] is None
    assert job["created"] <= job["started"] <= job["finished"]

    events = client.get(f"{location}/events", headers=headers("push"))
    assert events.mimetype == "application/x-ndjson"
    lines = _ndjson(events.get_data(as_text=True))
    assert any(line.get("status") == "Pushed" for line in lines[:-1])
    assert lines[-1] == {"result": job["result"]}


def test_async_push_failure_is_recorded_as_a_problem(client, headers, image, harness):
    address = harness["registries"]["basic"]["address"]
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{address}/{_name()}:1"},
        headers={**headers("push"), "Prefer": "respond-async"},
    )
    assert response.status_code == 202
    location = response.headers["Location"]
    job = _wait(lambda url: client.get(url, headers=headers("push")).get_json(), location)
    assert job["state"] == "failed"
    assert job["error"]["code"] == "REGISTRY_AUTH_FAILED" and job["error"]["status"] == 403
    lines = _ndjson(client.get(f"{location}/events", headers=headers("push")).get_data(True))
    assert lines[-1]["error"]["code"] == "REGISTRY_AUTH_FAILED"


def test_failures_known_before_the_job_are_plain_errors(client, headers, open_registry):
    response = client.post(
        f"/v1/images/nothing-{uuid.uuid4().hex[:8]}:1/push",
        json={"target": f"{open_registry}/x:1"},
        headers={**headers("push"), "Prefer": "respond-async"},
    )
    assert response.status_code == 404
    assert response.get_json()["code"] == "IMAGE_NOT_FOUND"


def test_jobs_are_visible_to_their_token_and_admin_only(client, headers, image, open_registry):
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{open_registry}/{_name()}:1"},
        headers={**headers("push"), "Prefer": "respond-async"},
    )
    location, job_id = response.headers["Location"], response.get_json()["id"]
    assert client.get(location, headers=headers("push")).status_code == 200
    assert client.get(location, headers=headers("admin")).status_code == 200
    other = client.get(location, headers=headers("read"))
    assert other.status_code == 404 and other.get_json()["code"] == "JOB_NOT_FOUND"
    assert client.get(f"{location}/events", headers=headers("read")).status_code == 404
    assert client.delete(location, headers=headers("read")).status_code == 404
    assert client.get(location).status_code == 401

    def ids(scope, query=""):
        return [
            j["id"] for j in client.get(f"/v1/jobs{query}", headers=headers(scope)).json["jobs"]
        ]

    assert job_id in ids("push") and job_id in ids("admin")
    assert job_id not in ids("read")
    assert job_id in ids("push", "?kind=push") and job_id not in ids("push", "?kind=pull")
    _wait(lambda url: client.get(url, headers=headers("push")).get_json(), location)
    assert job_id in ids("push", "?state=succeeded&state=failed")
    assert client.get("/v1/jobs?state=bogus", headers=headers("push")).status_code == 400


def test_unknown_job_is_404(client, headers):
    response = client.get(f"/v1/jobs/{uuid.uuid4().hex}", headers=headers("admin"))
    assert response.status_code == 404
    assert response.get_json()["code"] == "JOB_NOT_FOUND"


# --------------------------------------------------------------------------- pull and load


def test_async_pull_succeeds(client, headers, image, open_registry, docker_client, images):
    name = _name()
    push_image(docker_client, image["id"], f"{open_registry}/{name}:1")
    docker_client.api.remove_image(image["id"], force=True)
    response = client.post(
        "/v1/images/pull",
        json={"reference": f"{open_registry}/{name}:1"},
        headers={**headers("write"), "Prefer": "respond-async"},
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["kind"] == "pull"
    location = response.headers["Location"]
    job = _wait(lambda url: client.get(url, headers=headers("write")).get_json(), location)
    images.track(image["id"])
    assert job["state"] == "succeeded", job
    assert job["result"]["id"] == image["id"]
    assert job["result"]["digest"] == served_digest(open_registry, name, "1")


def test_async_pull_of_unknown_tag_fails_with_404_problem(client, headers, open_registry):
    response = client.post(
        "/v1/images/pull",
        json={"reference": f"{open_registry}/{_name()}:nope"},
        headers={**headers("write"), "Prefer": "respond-async"},
    )
    assert response.status_code == 202
    location = response.headers["Location"]
    job = _wait(lambda url: client.get(url, headers=headers("write")).get_json(), location)
    assert job["state"] == "failed"
    assert job["error"]["status"] == 404


def test_async_load_succeeds_and_leaves_no_spooled_body(
    client, headers, config, image, docker_client, images
):
    archive = b"".join(docker_client.api.get_image(image["ref"]))
    docker_client.api.remove_image(image["ref"], force=True)
    response = client.post(
        "/v1/archives",
        data=archive,
        headers={
            **headers("write"),
            "Prefer": "respond-async",
            "Content-Type": "application/x-tar",
        },
    )
    assert response.status_code == 202, response.get_json()
    location = response.headers["Location"]
    job = _wait(lambda url: client.get(url, headers=headers("write")).get_json(), location)
    images.track(image["id"])
    assert job["state"] == "succeeded", job
    assert job["kind"] == "load"
    assert job["result"]["loaded"] == [image["ref"]]
    assert job["result"]["ids"] == [image["id"]]
    spool = Path(config["BERTH_DATA_DIR"]) / "spool"
    assert not list(spool.glob("*"))


def test_async_load_refuses_a_bad_upload_before_the_job(client, headers):
    response = client.post(
        "/v1/archives",
        data=b"",
        headers={
            **headers("write"),
            "Prefer": "respond-async",
            "Content-Type": "application/x-tar",
        },
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "INVALID_ARCHIVE"


# --------------------------------------------------------------------------- cancelling


def _never_served(address: str, name: str, tag: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if served_digest(address, name, tag) is not None:
            return False
        time.sleep(0.25)
    return True


def _push_stalled(client, headers, big_image, stalling_registry, name: str) -> str:
    """An async push of the big image to ``name`` on the stalling registry, once it stalls:
    its job's Location."""
    response = client.post(
        f"/v1/images/{big_image['ref']}/push",
        json={"target": f"127.0.0.1:{stalling_registry.port}/{name}:1"},
        headers={**headers("push"), "Prefer": "respond-async"},
    )
    assert response.status_code == 202, response.get_json()
    stalling_registry.wait_stalled(timeout=30)
    return response.headers["Location"]


def test_stalled_push_finishes_once_the_registry_recovers(
    stall_client, headers, big_image, stalling_registry, open_registry
):
    """The control for the cancellation tests: the stall alone stops nothing."""
    client = stall_client
    name = _name()
    location = _push_stalled(client, headers, big_image, stalling_registry, name)
    time.sleep(1)
    job = client.get(location, headers=headers("push")).get_json()
    assert job["state"] == "running"
    assert job["progress"]["total"] > 0
    stalling_registry.release()
    job = _wait(lambda url: client.get(url, headers=headers("push")).get_json(), location)
    assert job["state"] == "succeeded", job
    assert job["result"]["digest"] == served_digest(open_registry, name, "1")


def test_cancelled_push_stops_the_engine(
    stall_client, headers, big_image, stalling_registry, open_registry
):
    client = stall_client
    name = _name()
    location = _push_stalled(client, headers, big_image, stalling_registry, name)
    assert client.get(location, headers=headers("push")).get_json()["state"] == "running"

    started = time.monotonic()
    cancelled = client.delete(location, headers=headers("push"))
    assert cancelled.status_code == 200
    assert time.monotonic() - started < 5  # the blocked engine stream was cut, not waited out
    job = cancelled.get_json()
    assert job["state"] == "cancelled"
    assert job["error"]["code"] == "JOB_CANCELLED" and job["result"] is None
    # The engine gave the push up: even with the registry fast again, the tag never appears.
    stalling_registry.release()
    assert _never_served(open_registry, name, "1")
    lines = _ndjson(client.get(f"{location}/events", headers=headers("push")).get_data(True))
    assert lines[-1]["error"]["code"] == "JOB_CANCELLED"
    again = client.delete(location, headers=headers("push"))
    assert again.status_code == 409 and again.get_json()["code"] == "JOB_FINISHED"
    assert client.get(location, headers=headers("push")).get_json()["state"] == "cancelled"


def test_cancel_reaches_the_job_through_another_process_view(
    config, headers, big_image, stalling_registry, open_registry
):
    """Two apps on one data dir stand for two workers: the one that did not start the job
    cannot signal it directly and goes through the record's cancel flag."""
    allowed = [*config["BERTH_ALLOWED_REGISTRIES"], f"127.0.0.1:{stalling_registry.port}"]
    config = {**config, "BERTH_ALLOWED_REGISTRIES": allowed}
    starter, other = create_app(config), create_app(config)
    name = _name()
    try:
        client = starter.test_client()
        location = _push_stalled(client, headers, big_image, stalling_registry, name)
        cancelled = other.test_client().delete(location, headers=headers("admin"))
        assert cancelled.status_code == 200
        assert cancelled.get_json()["state"] == "cancelled"
        stalling_registry.release()
        assert _never_served(open_registry, name, "1")
    finally:
        for app in (starter, other):
            services(app).engines.close()


# --------------------------------------------------------------------------- gunicorn


def _server_env(harness, tmp_path, *allowed: str) -> dict[str, str]:
    """The server's environment; its outbound policy allows the harness registries and
    ``allowed``."""
    return {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path / "data"),
        "BERTH_ALLOWED_REGISTRIES": ",".join([*harness_registries(harness), *allowed]),
        "BERTH_ALLOW_PUBLIC_REGISTRIES": "false",
    }


def _get_job(server, token):
    def get(location):
        # A new connection each time, so the two workers share the polling. A worker killed on
        # purpose resets the connections waiting on its own listening socket (reuse_port): such
        # a request is sent again, as a client would.
        for attempt in range(5):
            try:
                response = requests.get(
                    server.url + location,
                    headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                    timeout=10,
                )
                break
            except requests.ConnectionError:
                if attempt == 4:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200, response.text
        return response.json()

    return get


def test_async_push_through_gunicorn_with_two_workers(harness, tmp_path, image, open_registry):
    name = _name()
    with gunicorn_server(
        _server_env(harness, tmp_path), workers=2, tokens=token_entries()
    ) as server:
        deadline = time.monotonic() + 20
        while len(server.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.worker_pids()) == 2
        response = requests.post(
            f"{server.url}/v1/images/{image['ref']}/push",
            json={"target": f"{open_registry}/{name}:1"},
            headers={"Authorization": f"Bearer {TOKENS['push']}", "Prefer": "respond-async"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        location = response.headers["Location"]
        job = _wait(_get_job(server, TOKENS["push"]), location)
        assert job["state"] == "succeeded", job
        assert job["result"]["digest"] == served_digest(open_registry, name, "1")
        for _ in range(6):  # every worker answers for it
            assert _get_job(server, TOKENS["push"])(location)["state"] == "succeeded"
        events = requests.get(
            f"{server.url}{location}/events",
            headers={"Authorization": f"Bearer {TOKENS['push']}"},
            timeout=30,
        )
        assert _ndjson(events.text)[-1] == {"result": job["result"]}


def test_job_of_a_killed_gunicorn_worker_is_failed(
    harness, tmp_path, big_image, stalling_registry, open_registry
):
    env = _server_env(harness, tmp_path, f"127.0.0.1:{stalling_registry.port}")
    name = _name()
    with gunicorn_server(env, workers=2, tokens=token_entries()) as server:
        response = requests.post(
            f"{server.url}/v1/images/{big_image['ref']}/push",
            json={"target": f"127.0.0.1:{stalling_registry.port}/{name}:1"},
            headers={"Authorization": f"Bearer {TOKENS['push']}", "Prefer": "respond-async"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        location, job_id = response.headers["Location"], response.json()["id"]
        stalling_registry.wait_stalled(timeout=30)
        with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
            (pid,) = db.execute("SELECT worker_pid FROM jobs WHERE id = ?", (job_id,)).fetchone()
        assert pid in server.worker_pids()
        get = _get_job(server, TOKENS["push"])
        assert get(location)["state"] == "running"

        os.kill(pid, signal.SIGKILL)
        job = _wait(get, location, timeout=30)
        assert job["state"] == "failed"
        assert job["error"]["code"] == "JOB_WORKER_LOST"
        assert f"pid {pid}" in job["error"]["detail"]
        # the engine noticed its client went away and gave the push up
        stalling_registry.release()
        assert _never_served(open_registry, name, "1")


def test_jobs_of_a_stopping_server_are_failed(harness, tmp_path, big_image, stalling_registry):
    env = _server_env(harness, tmp_path, f"127.0.0.1:{stalling_registry.port}")
    with gunicorn_server(env, workers=2, tokens=token_entries()) as server:
        response = requests.post(
            f"{server.url}/v1/images/{big_image['ref']}/push",
            json={"target": f"127.0.0.1:{stalling_registry.port}/{_name()}:1"},
            headers={"Authorization": f"Bearer {TOKENS['push']}", "Prefer": "respond-async"},
            timeout=30,
        )
        job_id = response.json()["id"]
        stalling_registry.wait_stalled(timeout=30)
    # the server is stopped (SIGTERM): its workers failed the job on their way out
    store = JobStore.in_dir(tmp_path / "data")
    job = store.get(job_id)
    assert job["state"] == "failed"
    assert job["error"]["code"] == "JOB_WORKER_LOST"
    assert "shut down" in job["error"]["detail"]


def test_a_runner_built_before_a_fork_runs_the_childs_jobs_in_the_child(tmp_path):
    """create_app builds the runner once; a worker forked after that runs its own jobs."""
    runner = JobRunner(JobStore.in_dir(tmp_path))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        ok = False
        try:
            job = runner.submit("test", "me", None, lambda ctx: {"pid": os.getpid()})
            deadline = time.monotonic() + 20
            while runner.store.get(job["id"])["state"] in ACTIVE:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            record = runner.store.get(job["id"])
            ok = (
                record["state"] == "succeeded"
                and record["result"] == {"pid": os.getpid()}
                and record["worker_pid"] == os.getpid() == runner.worker.pid
            )
        finally:
            os.write(write_end, b"1" if ok else b"0")
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 1) == b"1"
    assert runner.worker.pid == os.getpid()  # the parent's runner is its own still
