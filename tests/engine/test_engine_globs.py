"""A token limited to some engines sees nothing of the others: jobs, distributions, audit
records, readiness and metrics.

The engines ``local``, ``staging-1`` and ``staging-2`` are three names for the harness's engine,
so jobs and distributions really run while their engine names differ.
"""

from __future__ import annotations

import time

import pytest

from app import create_app
from app.http.accessors import services
from tests.support.images import unique
from tests.support.tokens import auth

STAGING_ADMIN = {"Authorization": "Bearer staging-admin-0123456789"}
STAGING_WRITER = {"Authorization": "Bearer staging-writer-0123456789"}
ASYNC = {"Prefer": "respond-async", "Content-Type": "application/x-tar"}


@pytest.fixture
def globs_app(harness, config):
    config = dict(config)
    config["BERTH_ENGINES"] = {
        "local": harness["docker_host"],
        "staging-1": harness["docker_host"],
        "staging-2": harness["docker_host"],
    }
    config["BERTH_METRICS_PUBLIC"] = True
    config["BERTH_TOKENS"] = config["BERTH_TOKENS"] + [
        {
            "name": "staging-admin",
            "token": STAGING_ADMIN["Authorization"].split()[1],
            "scopes": ["admin"],
            "engines": ["staging-*"],
        },
        {
            "name": "staging-writer",
            "token": STAGING_WRITER["Authorization"].split()[1],
            "scopes": ["write"],
            "engines": ["staging-*"],
        },
    ]
    app = create_app(config)
    yield app
    services(app).engines.close()


@pytest.fixture
def archive(docker_client, images):
    """A small image (saved as a tar) and its reference; removed after the test."""
    _, ref = images.image("true")
    return b"".join(docker_client.images.get(ref).save(named=True)), ref


def _load_job(client, tar, engine, headers):
    response = client.post(f"/v1/archives?engine={engine}", data=tar, headers={**ASYNC, **headers})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def _distribute(client, ref, source, target):
    body = {"image": ref, "source_engine": source, "target_engines": [target], "via": "stream"}
    response = client.post("/v1/distributions", json=body, headers=auth("admin"))
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def _settle(client, job_ids):
    deadline = time.monotonic() + 120
    for job_id in job_ids:
        while True:
            job = client.get(f"/v1/jobs/{job_id}", headers=auth("admin")).get_json()
            if job["state"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.1)


def test_jobs_and_distributions_of_other_engines_do_not_exist_for_the_token(globs_app, archive):
    client = globs_app.test_client()
    tar, ref = archive
    on_local = _load_job(client, tar, "local", auth("admin"))
    on_staging = _load_job(client, tar, "staging-1", STAGING_WRITER)
    local_to_staging = _distribute(client, ref, "local", "staging-1")
    staging_only = _distribute(client, ref, "staging-1", "staging-2")
    _settle(client, [on_local, on_staging, local_to_staging, staging_only])

    everyone = {j["id"] for j in client.get("/v1/jobs", headers=auth("admin")).get_json()["jobs"]}
    assert {on_local, on_staging, local_to_staging, staging_only} <= everyone
    listed = client.get("/v1/jobs?limit=500", headers=STAGING_ADMIN).get_json()["jobs"]
    assert {j["id"] for j in listed} == {on_staging, staging_only}
    assert all(j["engine"].startswith("staging-") for j in listed)
    own = client.get("/v1/jobs", headers=STAGING_WRITER).get_json()["jobs"]
    assert [j["id"] for j in own] == [on_staging]

    for hidden in (on_local, local_to_staging):
        for method, path in (
            ("GET", f"/v1/jobs/{hidden}"),
            ("GET", f"/v1/jobs/{hidden}/events"),
            ("DELETE", f"/v1/jobs/{hidden}"),
        ):
            response = client.open(path, method=method, headers=STAGING_ADMIN)
            assert response.status_code == 404, (method, path)
            assert response.get_json()["code"] == "JOB_NOT_FOUND"
    hidden = client.get(f"/v1/distributions/{local_to_staging}", headers=STAGING_ADMIN)
    assert hidden.status_code == 404 and hidden.get_json()["code"] == "DISTRIBUTION_NOT_FOUND"
    seen = client.get(f"/v1/distributions/{staging_only}", headers=STAGING_ADMIN)
    assert seen.status_code == 200 and seen.get_json()["state"] == "succeeded"
    assert client.get(f"/v1/jobs/{on_staging}/events", headers=STAGING_ADMIN).status_code == 200
    assert client.get(f"/v1/jobs/{on_local}", headers=auth("admin")).status_code == 200


def test_the_audit_shows_only_records_of_the_tokens_engines(globs_app, images):
    client = globs_app.test_client()
    _, ref = images.image("true")
    repository = unique()
    for engine in ("local", "staging-1"):
        tagged = client.post(
            f"/v1/images/{ref}/tags?engine={engine}",
            json={"repository": repository, "tag": engine},
            headers=auth("write"),
        )
        assert tagged.status_code == 201
    _distribute(client, ref, "local", "staging-2")
    _distribute(client, ref, "staging-1", "staging-2")
    client.post("/v1/nothing-here", headers=auth("write"))  # a record naming no engine

    def records(headers):
        return client.get("/v1/audit", headers=headers).get_json()["records"]

    everything = records(auth("admin"))
    assert {r["engine"] for r in everything} == {"local", "staging-1", None}
    limited = records(STAGING_ADMIN)
    assert [(r["operation"], r["engine"]) for r in limited] == [
        ("create_distribution", "staging-1"),
        ("tag_image", "staging-1"),
    ]
    assert limited[0]["engines"] == ["staging-1", "staging-2"]


def test_public_readiness_and_metrics_name_no_engine(globs_app):
    client = globs_app.test_client()
    client.get("/v1/images?engine=staging-2", headers=auth("read"))
    ready = client.get("/v1/ready")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ready"}
    assert client.get("/v1/ready?engine=staging-2").status_code == 400
    metrics = client.get("/metrics")  # BERTH_METRICS_PUBLIC: no token
    assert metrics.status_code == 200
    text = metrics.get_data(as_text=True)
    assert "berth_http_requests_total" in text and "staging-" not in text
    # Per-engine readiness needs a token, and shows only the token's engines.
    assert client.get("/v1/engines").status_code == 401
    listed = client.get("/v1/engines", headers=STAGING_ADMIN).get_json()
    assert sorted(row["name"] for row in listed["engines"]) == ["staging-1", "staging-2"]
    assert listed["default"] is None  # the default engine, local, is not this token's
    refused = client.get("/v1/images", headers=STAGING_ADMIN)
    assert refused.status_code == 403 and refused.get_json()["code"] == "ENGINE_FORBIDDEN"
    assert "local" not in refused.get_data(as_text=True)
