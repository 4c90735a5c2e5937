"""What scripts rely on, without an engine: Retry-After on every 429 and 503, ``Prefer: wait=N``
bounds, one title per code, and ``Idempotency-Key`` reservations under concurrency."""

from __future__ import annotations

import inspect
import io
import threading
import time

import pytest

from app import errors
from app.config import DEFAULTS
from app.errors import BerthError
from app.http import prefer
from app.http.accessors import services
from app.jobs.idempotency import IdempotencyKeys
from app.jobs.store import JobStore
from app.jobs.workers import Worker
from app.server.startup import announce, bound_address

# --------------------------------------------------------------------------- Retry-After


def test_every_429_and_503_of_the_catalogue_carries_retry_after():
    for cls in vars(errors).values():
        if inspect.isclass(cls) and issubclass(cls, BerthError) and cls.status in (429, 503):
            assert cls("x").headers["Retry-After"].isdigit(), cls
    kept = errors.TooManyJobs("x", headers={"Retry-After": "9"})
    assert kept.headers["Retry-After"] == "9"  # a raiser that knows better keeps its value
    assert "Retry-After" not in errors.ImageNotFound("x").headers


def test_engine_unavailable_answers_carry_retry_after(offline_client, headers):
    for path, auth in (("/v1/images", headers("read")), ("/v1/ready", {})):
        response = offline_client.get(path, headers=auth)
        assert response.status_code == 503
        assert response.get_json()["code"] == "ENGINE_UNAVAILABLE"
        assert int(response.headers["Retry-After"]) > 0


# --------------------------------------------------------------------------- Prefer: wait=N


def _blocked_job(app, release: threading.Event) -> dict:
    """A job of the admin token that runs until ``release`` is set."""

    def run(ctx):
        release.wait(30)
        return {"done": True}

    return services(app).jobs.submit("pull", "admin-token", "wait/test", run)


def test_get_job_with_prefer_wait_answers_when_the_job_ends(offline_app, headers):
    client = offline_app.test_client()
    release = threading.Event()
    job = _blocked_job(offline_app, release)
    threading.Timer(0.7, release.set).start()
    started = time.monotonic()
    answer = client.get(f"/v1/jobs/{job['id']}", headers={**headers(), "Prefer": "wait=20"})
    took = time.monotonic() - started
    assert answer.status_code == 200
    assert answer.get_json()["state"] == "succeeded"
    assert answer.headers["Preference-Applied"] == "wait=20"
    assert 0.5 < took < 10


def test_get_job_with_prefer_wait_answers_after_n_seconds(offline_app, headers):
    client = offline_app.test_client()
    release = threading.Event()
    job = _blocked_job(offline_app, release)
    try:
        started = time.monotonic()
        answer = client.get(f"/v1/jobs/{job['id']}", headers={**headers(), "Prefer": "wait=1"})
        took = time.monotonic() - started
        assert answer.get_json()["state"] == "running"
        assert 0.9 < took < 5
        at_once = client.get(f"/v1/jobs/{job['id']}", headers=headers())
        assert "Preference-Applied" not in at_once.headers
    finally:
        release.set()


def test_prefer_wait_is_capped_and_bounded_per_process(offline_app, headers, monkeypatch):
    monkeypatch.setattr(prefer, "MAX_WAIT_SECONDS", 2)
    client = offline_app.test_client()
    release = threading.Event()
    job = _blocked_job(offline_app, release)
    url, asked = f"/v1/jobs/{job['id']}", {**headers(), "Prefer": "wait=3600"}
    try:
        capped = client.get(url, headers=asked)
        assert capped.headers["Preference-Applied"] == "wait=2"
        answers: list = []
        waiting = [
            threading.Thread(
                target=lambda: answers.append(offline_app.test_client().get(url, headers=asked))
            )
            for _ in range(prefer.MAX_WAITERS)
        ]
        for thread in waiting:
            thread.start()
        time.sleep(0.5)  # every waiting place is taken now
        started = time.monotonic()
        extra = client.get(url, headers=asked)
        assert time.monotonic() - started < 1
        assert "Preference-Applied" not in extra.headers
        for thread in waiting:
            thread.join()
        assert [a.headers["Preference-Applied"] for a in answers] == ["wait=2"] * len(waiting)
    finally:
        release.set()


def test_a_code_reads_the_same_title_wherever_it_is_raised():
    titles: dict[str, set[str]] = {}
    for cls in vars(errors).values():
        if inspect.isclass(cls) and issubclass(cls, BerthError) and cls is not BerthError:
            titles.setdefault(cls.code, set()).add(cls("x").to_problem()["title"])
    assert {code: t for code, t in titles.items() if len(t) > 1} == {}
    assert titles["REGISTRY_UNREACHABLE"] == {"Registry unreachable"}


# --------------------------------------------------------------------------- Idempotency-Key


def test_concurrent_requests_with_one_key_start_one_job(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    keys = IdempotencyKeys(store)
    started: list[str] = []
    barrier = threading.Barrier(4)

    def submit() -> dict:
        job = store.create("push", "ci", "x", Worker.current())
        started.append(job["id"])
        time.sleep(0.2)  # the others arrive while this one is starting its job
        return job

    found: list[str] = []

    def request() -> None:
        barrier.wait()
        job, _ = keys.submit_once("ci", "key-1", "same", submit)
        found.append(job["id"])

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1 and found == started * 4
    with pytest.raises(errors.IdempotencyKeyReused):
        keys.submit_once("ci", "key-1", "other", submit)
    assert keys.submit_once("cd", "key-1", "other", submit)[1] is True  # another token's key
    store.finish(started[0], "succeeded", result={})
    store.purge(time.time() + 1)  # retention removed the job: its key is free again
    assert keys.submit_once("ci", "key-1", "other", submit)[1] is True


# --------------------------------------------------------------------------- start-up banner


def test_the_banner_writes_addresses_as_clients_do():
    assert bound_address(("127.0.0.1", 8080)) == "127.0.0.1:8080"
    assert bound_address(("::1", 8080)) == "[::1]:8080"
    assert bound_address("/run/berth.sock") == "unix:/run/berth.sock"


def test_the_banner_names_every_address_and_warns_of_each_silent_engine(tmp_path):
    config = {
        **DEFAULTS,
        "BERTH_TOKENS": [],
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_ENGINES": {"a": f"unix://{tmp_path}/a.sock", "b": f"unix://{tmp_path}/b.sock"},
    }
    out = io.StringIO()
    announce(["0.0.0.0:9000", "unix:/run/berth.sock"], out=out, config=config)
    text = out.getvalue()
    assert "Berth listens on http://0.0.0.0:9000, unix:/run/berth.sock " in text
    for name in ("a", "b"):
        assert f"WARNING: engine '{name}' does not answer at unix://{tmp_path}/{name}.sock" in text
