"""Bounded work: a bounded job queue (429 TOO_MANY_JOBS), cancellation in every phase of a job,
deeply nested JSON refused with a 400, and progress kept within bounds however long a stream.

The engine tests pull from a loopback "registry" that accepts connections and never answers
(``tests.support.silent_registry``): the engine's answer to the pull does not start, so the job
stays in the engine handshake, where it used to be out of reach of a cancel.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time

import docker
import pytest

from app import create_app
from app.domain import jsonsafe
from app.domain.progress import MAX_LAYERS, MAX_LOADED, MAX_MESSAGES, Progress
from app.domain.tar_framing import parse_load_messages
from app.errors import TooManyJobs
from app.http.accessors import services
from app.jobs.pool import JobPool
from tests.support.needs import need_engines
from tests.support.silent_registry import SilentRegistry

DEEP = 50_000

# --------------------------------------------------------------------------- JSON nesting


def test_json_loader_refuses_deep_nesting_as_a_value_error():
    with pytest.raises(ValueError, match="nested deeper than 64"):
        jsonsafe.loads("[" * DEEP + "]" * DEEP)  # beyond the interpreter's recursion limit
    with pytest.raises(jsonsafe.TooDeep):
        jsonsafe.loads('{"a":' * 65 + "1" + "}" * 65)  # within it, past the bound
    assert jsonsafe.loads("[" * 64 + "]" * 64) is not None
    assert jsonsafe.loads(b'{"a": [1, {"b": []}]}') == {"a": [1, {"b": []}]}


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * DEEP + b"]" * DEEP,
        b'{"reference": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"reference": "a", "x": ' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}",
    ],
)
def test_deeply_nested_json_body_is_400_without_a_traceback(offline_client, headers, caplog, raw):
    caplog.set_level(logging.DEBUG)
    response = offline_client.post(
        "/v1/images/pull", data=raw, content_type="application/json", headers=headers("admin")
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "MALFORMED_JSON"
    assert "nested deeper than" in problem["detail"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


def test_deeply_nested_registry_auth_header_is_400(offline_client, headers, caplog):
    caplog.set_level(logging.DEBUG)
    value = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()
    response = offline_client.post(
        "/v1/images/pull",
        json={"reference": "busybox:latest"},
        headers={**headers("admin"), "X-Registry-Auth": value},
    )
    assert response.status_code == 400, response.get_data()[:300]
    assert response.get_json()["code"] == "INVALID_REGISTRY_AUTH"
    assert "Traceback" not in caplog.text


def test_deeply_nested_change_instruction_is_a_validation_error():
    from app.domain.changes import validate_changes
    from app.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        validate_changes(["CMD " + "[" * DEEP + "]" * DEEP])
    assert refused.value.status == 400


# --------------------------------------------------------------------------- progress bounds


def test_progress_keeps_bounded_messages_and_layers():
    progress = Progress()
    layers = 3 * MAX_LAYERS
    for i in range(layers):
        layer = f"layer{i}"
        progress.feed({"status": "Downloading", "id": layer, "progressDetail": {"current": 5}})
        progress.feed({"status": "Downloading", "id": layer, "progressDetail": {"current": 10}})
        progress.feed({"status": "Pull complete", "id": layer})
    progress.feed({"status": "Digest: sha256:" + "a" * 64})
    assert len(progress.layers) <= MAX_LAYERS
    assert len(progress.messages) <= MAX_MESSAGES
    assert progress.messages[-1].startswith("Digest: ")
    assert progress.digest == "sha256:" + "a" * 64
    assert (progress.current, progress.total) == (10 * layers, 10 * layers)  # aggregates kept


def test_progress_keeps_loaded_image_lines_past_the_message_bound():
    progress = Progress()
    for i in range(5 * MAX_MESSAGES):
        progress.feed({"stream": f"Loaded image: app{i}:1\n"})
        progress.feed({"stream": "noise\n"})
    loaded = [m for m in progress.messages if m.startswith("Loaded image")]
    assert len(set(loaded)) == 5 * MAX_MESSAGES <= MAX_LOADED  # none lost to the bound
    assert loaded[0] == "Loaded image: app0:1"
    assert parse_load_messages(progress.messages).references[-1] == f"app{5 * MAX_MESSAGES - 1}:1"
    assert len(progress.messages) <= MAX_LOADED + MAX_MESSAGES


def test_job_progress_thinning_keeps_bounded_state(tmp_path):
    from app.jobs.runner import MAX_EVENTS, MAX_THINNED_LAYERS, JobContext
    from app.jobs.store import JobStore
    from app.jobs.workers import Worker

    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.create("pull", "alice", "x", Worker.current())
    store.start(job["id"])
    ctx = JobContext(store, job)
    progress = Progress()
    for i in range(3 * MAX_THINNED_LAYERS):
        event = {"status": "Downloading", "id": f"l{i}", "progressDetail": {"current": 1}}
        ctx.record(progress.feed(event), progress)
    for i in range(MAX_EVENTS):
        ctx.record({"status": f"line {i}", "layer": None, "current": None, "total": None})
    ctx.flush()
    assert len(ctx._last_layer_line) <= MAX_THINNED_LAYERS
    assert len(store.events(job["id"], limit=10 * MAX_EVENTS)) == MAX_EVENTS
    assert store.get(job["id"])["current"] == 3 * MAX_THINNED_LAYERS


# --------------------------------------------------------------------------- the pool


def test_pool_refuses_past_its_bound_and_keeps_threads_bounded():
    pool = JobPool(workers=2, max_queued=3, name="test-pool")
    release = threading.Event()
    ran: list[int] = []

    def task(i):
        return lambda: (release.wait(10), ran.append(i))

    for i in range(5):
        pool.reserve()
        pool.submit(f"job{i}", task(i))
    with pytest.raises(TooManyJobs) as refused:
        pool.reserve()
    assert refused.value.status == 429 and refused.value.headers["Retry-After"].isdigit()
    with pytest.raises(TooManyJobs):
        pool.check()
    assert pool.threads == 2
    deadline = time.monotonic() + 10  # both threads take their first job as they start
    while len(pool.waiting()) > 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.waiting() == ["job2", "job3", "job4"]
    assert pool.discard("job3") and not pool.discard("job3")
    pool.reserve()  # the discarded job's place is free again
    pool.submit("job5", task(5))
    release.set()
    deadline = time.monotonic() + 10
    while len(ran) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(ran) == [0, 1, 2, 4, 5]
    assert pool.threads <= 2


def test_pool_threads_end_when_idle(monkeypatch):
    monkeypatch.setattr("app.jobs.pool.IDLE_SECONDS", 0.1)
    pool = JobPool(workers=3, max_queued=0)
    done = threading.Event()
    pool.reserve()
    pool.submit("one", done.set)
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while pool.threads and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pool.threads == 0


# --------------------------------------------------------------------------- against the engine


def _async_pull(client, headers, reference):
    return client.post(
        "/v1/images/pull",
        json={"reference": reference},
        headers={**headers("write"), "Prefer": "respond-async"},
    )


def _job_threads() -> set[threading.Thread]:
    """The job threads alive now (every app's pool names its threads alike: compared by
    identity)."""
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith("berth-job-") and t.name != "berth-job-monitor"
    }


def test_queued_jobs_are_bounded_and_hold_no_thread(app_allowing, config, headers):
    config["BERTH_JOB_CONCURRENCY"] = 1
    config["BERTH_MAX_QUEUED_JOBS"] = 39
    with SilentRegistry() as silent:
        app = app_allowing(silent.address)
        client = app.test_client()
        earlier = _job_threads()  # other apps' idle job threads, ending on their own
        locations = []
        for i in range(40):
            response = _async_pull(client, headers, f"{silent.address}/bounded/app{i}:1")
            assert response.status_code == 202, response.get_data()[:300]
            locations.append(response.headers["Location"])
        assert len(_job_threads() - earlier) == 1  # one runs; 39 wait without a thread

        refused = _async_pull(client, headers, f"{silent.address}/bounded/over:1")
        assert refused.status_code == 429
        assert refused.mimetype == "application/problem+json"
        assert refused.get_json()["code"] == "TOO_MANY_JOBS"
        assert int(refused.headers["Retry-After"]) > 0
        listed = client.get("/v1/jobs?limit=100", headers=headers("admin")).get_json()["jobs"]
        assert len(listed) == 40  # the refused job was never recorded
        assert not any(job["target"].endswith("over:1") for job in listed)

        # A queued job cancelled frees its place at once.
        cancelled = client.delete(locations[-1], headers=headers("write"))
        assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
        again = _async_pull(client, headers, f"{silent.address}/bounded/again:1")
        assert again.status_code == 202
        locations.append(again.headers["Location"])

        for location in reversed(locations):  # queued ones first, then the running one
            answer = client.delete(location, headers=headers("write"))
            assert answer.status_code in (200, 409), answer.get_data()[:300]
        for location in locations:
            state = client.get(location, headers=headers("write")).get_json()["state"]
            assert state == "cancelled"


def test_cancel_during_the_engine_handshake_stops_the_pull(app_allowing, headers):
    with SilentRegistry() as silent:
        client = app_allowing(silent.address).test_client()
        response = _async_pull(client, headers, f"{silent.address}/hang/app:1")
        assert response.status_code == 202
        location = response.headers["Location"]
        silent.wait_connected(timeout=30)  # the engine waits for the registry: no answer yet
        job = client.get(location, headers=headers("write")).get_json()
        assert job["state"] == "running" and job["progress"]["current"] == 0

        started = time.monotonic()
        cancelled = client.delete(location, headers=headers("write"))
        assert cancelled.status_code == 200, cancelled.get_json()
        assert time.monotonic() - started < 5  # not the 10 s wait of an unreachable job
        job = cancelled.get_json()
        assert job["state"] == "cancelled" and job["error"]["code"] == "JOB_CANCELLED"
        # Berth closed its engine connection, so the engine dropped the pull and its
        # connections to the registry.
        silent.wait_all_closed(timeout=30)
        time.sleep(1)
        assert silent.accepted == 1  # and it did not go on to try the registry over plain HTTP
        events = client.get(f"{location}/events", headers=headers("write")).get_data(True)
        assert json.loads(events.splitlines()[-1])["error"]["code"] == "JOB_CANCELLED"


def test_a_job_asked_to_cancel_never_ends_succeeded(tmp_path):
    from app.jobs.runner import JobRunner
    from app.jobs.store import JobStore

    runner = JobRunner(JobStore(tmp_path / "jobs.sqlite3"), concurrency=1)
    proceed, inside = threading.Event(), threading.Event()

    def run(ctx):
        inside.set()
        proceed.wait(10)  # a phase that does not look at cancellation
        return {"done": True}

    job = runner.submit("pull", "alice", "x", run)
    assert inside.wait(10)
    runner.store.request_cancel(job["id"], {"code": "JOB_CANCELLED"})  # another process's ask
    proceed.set()
    deadline = time.monotonic() + 10
    while runner.store.get(job["id"])["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    record = runner.store.get(job["id"])
    assert record["state"] == "cancelled" and record["result"] is None


def test_the_library_internals_cancellation_relies_on_are_there(tmp_path):
    """``app.engine.cancel`` wraps urllib3's ``_get_conn``/``_put_conn`` on docker-py's pools
    and closes ``conn.sock``: fail loudly when an upgrade changes them."""
    import requests.adapters
    from docker.transport.unixconn import UnixHTTPAdapter

    from app.engine.cancel import closing_on, track

    assert hasattr(requests.adapters.HTTPAdapter, "get_connection_with_tls_context")
    client = docker.APIClient(base_url=f"unix://{tmp_path}/engine.sock", version="1.41")
    track(client)
    adapter = client.get_adapter("http+docker://localhost/version")
    assert isinstance(adapter, UnixHTTPAdapter)
    request = requests.Request("GET", "http+docker://localhost/version").prepare()
    pool = adapter.get_connection_with_tls_context(request, True)
    assert callable(pool._get_conn) and callable(pool._put_conn)

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(f"{tmp_path}/engine.sock")
    listener.listen()
    closers = []
    with closing_on(closers.append):
        conn = pool._get_conn()
        assert conn.sock is not None  # connected at once, so that a cancel finds a socket
        closers[0]()  # a cancel: the socket is shut down
        assert conn.sock.recv(1) == b""
        pool._put_conn(conn)
    listener.close()
    client.close()


def test_cancel_during_a_distribution_push_handshake_stops_it(harness, config, headers, images):
    need_engines(harness, "fleet-1", "fleet-2")
    engines = harness["engines"]
    _, ref = images.image("echo distributed > /marker")
    with SilentRegistry() as silent:
        app = create_app(
            {
                **config,
                "BERTH_ENGINES": {
                    "local": harness["docker_host"],
                    **{name: engines[name]["docker_host"] for name in ("fleet-1", "fleet-2")},
                },
                "BERTH_ALLOWED_REGISTRIES": [*config["BERTH_ALLOWED_REGISTRIES"], silent.address],
            }
        )
        try:
            client = app.test_client()
            response = client.post(
                "/v1/distributions",
                json={
                    "image": ref,
                    "target_engines": ["fleet-1", "fleet-2"],
                    "via": {"registry": f"{silent.address}/dist/app:1"},
                },
                headers=headers("push"),
            )
            assert response.status_code == 202, response.get_json()
            job_id = response.get_json()["id"]
            silent.wait_connected(timeout=30)  # the source engine waits for the registry
            started = time.monotonic()
            cancelled = client.delete(f"/v1/jobs/{job_id}", headers=headers("push"))
            assert cancelled.status_code == 200, cancelled.get_json()
            assert time.monotonic() - started < 5
            assert cancelled.get_json()["state"] == "cancelled"
            silent.wait_all_closed(timeout=30)
            time.sleep(1)
            assert silent.accepted == 1
        finally:
            services(app).engines.close()
