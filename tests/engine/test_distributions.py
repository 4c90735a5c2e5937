"""Distributions: one image from the suite's engine to the harness's fleet engines.

The source image is built on the harness engine; the targets are the empty engines fleet-1 and
fleet-2 (``scripts/harness.py start --engines 2``), checked with docker-py afterwards. Images
put on the fleet engines are removed after each test (the engines are shared by the suite).
"""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from app import create_app
from app.errors import EngineNotFound, Forbidden, ValidationFailed
from app.http.accessors import services
from app.services.distribution import (
    PullBytes,
    distribution_view,
    resolve_engines,
    source_names,
)
from tests.support.harness import harness_module
from tests.support.images import unique
from tests.support.needs import need_engines
from tests.support.registry import registry_auth_header
from tests.support.stall_proxy import StallingProxy

FLEET = ("fleet-1", "fleet-2")
BLOB = "dd if=/dev/urandom of=/blob bs=1M count=5 2>/dev/null"
LIMITED = {"Authorization": "Bearer limited-push-token-0123456789"}
TIMEOUT = 120


@pytest.fixture
def fleet(harness):
    """docker-py clients on fleet-1 and fleet-2; what the test put there is removed after."""
    need_engines(harness, *FLEET)
    engines = harness["engines"]
    clients = {
        name: docker.DockerClient(base_url=engines[name]["docker_host"], timeout=60)
        for name in FLEET
    }
    yield clients
    for client in clients.values():
        try:
            for image in client.images.list():
                ours = [t for t in image.tags if t.startswith(("berth-test-", "127.0.0.1:"))]
                if ours or not image.tags:
                    client.images.remove(image.id, force=True)
        except docker.errors.DockerException:
            pass  # the engine is down; the test that stopped it restarts it
        client.close()


@pytest.fixture
def fleet_config(harness, config, fleet):
    """The app config for the fleet: the local engine, fleet-1 and fleet-2, a limited token."""
    config = dict(config)
    config["BERTH_ENGINES"] = {
        "local": harness["docker_host"],
        **{name: harness["engines"][name]["docker_host"] for name in FLEET},
    }
    config["BERTH_TOKENS"] = config["BERTH_TOKENS"] + [
        {
            "name": "limited",
            "token": LIMITED["Authorization"].split()[1],
            "scopes": ["push"],
            "engines": ["local", "fleet-1"],
        }
    ]
    return config


@pytest.fixture
def fleet_app(fleet_config):
    app = create_app(fleet_config)
    yield app
    services(app).engines.close()


@pytest.fixture
def fleet_client(fleet_app):
    return fleet_app.test_client()


@pytest.fixture
def source_image(images):
    """A 5 MiB image of random data on the source engine: ``(id, reference)``."""
    return images.image(BLOB)


def registry_ref(harness, name: str | None = None) -> str:
    return f"{harness['registries']['open']['address']}/{name or unique('berth-dist')}:1"


def start(client, body, headers):
    response = client.post("/v1/distributions", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    document = response.get_json()
    assert response.headers["Location"] == f"/v1/distributions/{document['id']}"
    return document


def wait(client, distribution_id, headers, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/distributions/{distribution_id}", headers=headers)
        assert response.status_code == 200, response.get_json()
        document = response.get_json()
        if document["state"] not in ("queued", "running"):
            return document
        assert time.monotonic() < deadline, document
        time.sleep(0.2)


def rows_by_engine(document):
    return {row["engine"]: row for row in document["engines"]}


def image_on(client, ref):
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


# --------------------------------------------------------------------------- against engines


def test_via_registry_to_all_gives_every_engine_the_source_image_id(
    fleet_client, fleet, harness, headers, source_image
):
    image_id, ref = source_image
    target = registry_ref(harness)
    accepted = start(
        fleet_client,
        {"image": ref, "target_engines": "all", "via": {"registry": target}},
        headers("push"),
    )
    assert accepted["state"] in ("queued", "running")
    assert [row["engine"] for row in accepted["engines"]] == list(FLEET)
    assert accepted["source_engine"] == "local" and accepted["image_id"] == image_id

    done = wait(fleet_client, accepted["id"], headers("push"))
    assert done["state"] == "succeeded", done
    assert done["partial"] is False and done["error"] is None
    assert done["summary"]["succeeded"] == list(FLEET)
    assert done["push"]["reference"] == target and done["push"]["digest"].startswith("sha256:")
    for name, row in rows_by_engine(done).items():
        assert row["state"] == "succeeded" and row["image_id"] == image_id
        assert row["bytes"] > 4 * 1024 * 1024  # the random layer moved (compressed ~5 MiB)
        assert row["duration"] > 0 and row["error"] is None
        pulled = image_on(fleet[name], target)
        assert pulled is not None and pulled.id == image_id
        assert ref in pulled.tags  # the image's own name came along
    # The same distribution, as the job it is.
    job = fleet_client.get(f"/v1/jobs/{accepted['id']}", headers=headers("push")).get_json()
    assert job["kind"] == "distribution" and job["state"] == "succeeded"
    assert {row["engine"] for row in job["result"]["engines"]} == set(FLEET)


@pytest.mark.parametrize("by", ["reference", "id"])
def test_via_stream_to_one_engine_loads_the_same_image_and_nothing_elsewhere(
    fleet_client, fleet, headers, source_image, by
):
    image_id, ref = source_image
    accepted = start(
        fleet_client,
        {
            "image": ref if by == "reference" else image_id,
            "target_engines": ["fleet-1"],
            "via": "stream",
        },
        headers("push"),
    )
    done = wait(fleet_client, accepted["id"], headers("push"))
    assert done["state"] == "succeeded", done
    assert done["via"] == "stream" and done["push"] is None
    (row,) = done["engines"]
    assert row["engine"] == "fleet-1" and row["image_id"] == image_id
    assert row["bytes"] > 5 * 1024 * 1024  # the uncompressed archive
    loaded = image_on(fleet["fleet-1"], image_id)
    assert loaded is not None
    assert loaded.tags == ([ref] if by == "reference" else [])  # an id carries no name
    assert image_on(fleet["fleet-2"], image_id) is None


def test_a_retried_distribution_with_its_idempotency_key_starts_nothing_new(
    fleet_client, fleet, headers, source_image
):
    image_id, ref = source_image
    body = {"image": ref, "target_engines": ["fleet-1"], "via": "stream"}
    sent = {**headers("push"), "Idempotency-Key": unique("key")}
    first = start(fleet_client, body, sent)
    again = fleet_client.post("/v1/distributions", json=body, headers={**sent, "Prefer": "wait=60"})
    assert again.status_code == 202 and again.get_json()["id"] == first["id"]
    assert again.headers["Location"] == f"/v1/distributions/{first['id']}"
    assert again.headers["Preference-Applied"] == "wait=60"
    assert again.get_json()["state"] == "succeeded", again.get_json()  # waited for its end
    assert [row["engine"] for row in again.get_json()["engines"]] == ["fleet-1"]
    jobs = fleet_client.get("/v1/jobs?kind=distribution", headers=headers("push")).get_json()
    assert [j["id"] for j in jobs["jobs"]] == [first["id"]]
    other = fleet_client.post(
        "/v1/distributions", json={**body, "target_engines": ["fleet-2"]}, headers=sent
    )
    assert other.status_code == 422 and other.get_json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert image_on(fleet["fleet-1"], image_id) is not None


@pytest.fixture
def stopped_fleet_2(harness, fleet):
    """fleet-2 stopped for the test; always started again."""
    module = harness_module()
    state = module.load_state(harness["dir"])
    module.stop_engine(state, "fleet-2")
    try:
        yield
    finally:
        module.start_engine(state, "fleet-2")
        module.save_state(state)


@pytest.mark.parametrize("via", ["registry", "stream"])
def test_stopped_target_fails_only_its_row_and_the_result_is_partial(
    fleet_client, fleet, harness, headers, source_image, stopped_fleet_2, via
):
    image_id, ref = source_image
    how = {"registry": registry_ref(harness)} if via == "registry" else "stream"
    accepted = start(
        fleet_client, {"image": ref, "target_engines": list(FLEET), "via": how}, headers("push")
    )
    done = wait(fleet_client, accepted["id"], headers("push"))
    assert done["state"] == "failed" and done["partial"] is True
    assert done["error"]["code"] == "DISTRIBUTION_PARTIAL"
    assert "fleet-2" in done["error"]["detail"]
    assert done["summary"] == {
        "succeeded": ["fleet-1"],
        "failed": ["fleet-2"],
        "cancelled": [],
        "in_progress": [],
    }
    rows = rows_by_engine(done)
    assert rows["fleet-1"]["state"] == "succeeded" and rows["fleet-1"]["image_id"] == image_id
    assert rows["fleet-2"]["state"] == "failed" and rows["fleet-2"]["image_id"] is None
    assert rows["fleet-2"]["error"]["code"] == "ENGINE_UNAVAILABLE"
    assert rows["fleet-2"]["duration"] < 10  # a down engine fails fast
    assert image_on(fleet["fleet-1"], ref).id == image_id
    job = fleet_client.get(f"/v1/jobs/{accepted['id']}", headers=headers("push")).get_json()
    assert job["state"] == "failed" and job["result"] is None
    assert job["error"]["succeeded"] == ["fleet-1"] and job["error"]["failed"] == ["fleet-2"]


def test_registry_credentials_serve_the_push_and_the_pulls_and_are_never_stored(
    fleet_client, fleet, fleet_app, harness, headers, source_image
):
    image_id, ref = source_image
    basic = harness["registries"]["basic"]
    target = f"{basic['address']}/{unique('berth-dist')}:1"
    auth = registry_auth_header(basic["username"], basic["password"])
    response = fleet_client.post(
        "/v1/distributions",
        json={"image": ref, "target_engines": ["fleet-1"], "via": {"registry": target}},
        headers={**headers("push"), "X-Registry-Auth": auth},
    )
    assert response.status_code == 202
    done = wait(fleet_client, response.get_json()["id"], headers("push"))
    assert done["state"] == "succeeded", done
    assert image_on(fleet["fleet-1"], target).id == image_id
    data_dir = Path(fleet_app.config["BERTH_DATA_DIR"])
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert basic["password"].encode() not in path.read_bytes(), path
    # Without credentials the registry refuses the push: no engine gets anything.
    refused = start(
        fleet_client,
        {"image": ref, "target_engines": ["fleet-2"], "via": {"registry": target}},
        headers("push"),
    )
    failed = wait(fleet_client, refused["id"], headers("push"))
    assert failed["state"] == "failed" and failed["partial"] is False
    assert failed["error"]["code"] == "DISTRIBUTION_FAILED"
    assert failed["push"]["error"]["code"] == "REGISTRY_AUTH_FAILED"
    (row,) = failed["engines"]
    assert row["state"] == "failed" and row["error"]["code"] == "REGISTRY_AUTH_FAILED"
    assert image_on(fleet["fleet-2"], target) is None


def test_token_limited_to_one_engine_may_distribute_only_there(
    fleet_client, fleet, headers, source_image
):
    image_id, ref = source_image
    for targets in (list(FLEET), "all"):
        refused = fleet_client.post(
            "/v1/distributions",
            json={"image": ref, "target_engines": targets, "via": "stream"},
            headers=LIMITED,
        )
        assert refused.status_code == 403
        problem = refused.get_json()
        assert problem["code"] == "ENGINE_FORBIDDEN" and problem["engine"] == "fleet-2"
    assert image_on(fleet["fleet-1"], ref) is None  # nothing started
    from_fleet_2 = fleet_client.post(
        "/v1/distributions",
        json={
            "image": ref,
            "target_engines": ["fleet-1"],
            "via": "stream",
            "source_engine": "fleet-2",
        },
        headers=LIMITED,
    )
    assert from_fleet_2.status_code == 403 and from_fleet_2.get_json()["engine"] == "fleet-2"

    accepted = start(
        fleet_client, {"image": ref, "target_engines": ["fleet-1"], "via": "stream"}, LIMITED
    )
    assert wait(fleet_client, accepted["id"], LIMITED)["state"] == "succeeded"
    assert image_on(fleet["fleet-1"], ref).id == image_id
    # Visible to the token that started it and to admin, to no one else.
    path = f"/v1/distributions/{accepted['id']}"
    assert fleet_client.get(path, headers=headers("admin")).status_code == 200
    other = fleet_client.get(path, headers=headers("push"))
    assert other.status_code == 404 and other.get_json()["code"] == "DISTRIBUTION_NOT_FOUND"


def test_cancelling_the_job_stops_the_distribution(
    fleet_config, fleet, harness, headers, source_image
):
    _, ref = source_image
    host, port = harness["registries"]["open"]["address"].split(":")
    with StallingProxy((host, int(port)), stall_after=1024 * 1024) as proxy:
        target = f"127.0.0.1:{proxy.port}/{unique('berth-dist')}:1"
        allowed = [*fleet_config["BERTH_ALLOWED_REGISTRIES"], f"127.0.0.1:{proxy.port}"]
        fleet_app = create_app({**fleet_config, "BERTH_ALLOWED_REGISTRIES": allowed})
        fleet_client = fleet_app.test_client()
        accepted = start(
            fleet_client,
            {"image": ref, "target_engines": list(FLEET), "via": {"registry": target}},
            headers("push"),
        )
        proxy.wait_stalled(timeout=30)
        started = time.monotonic()
        cancel = fleet_client.delete(f"/v1/jobs/{accepted['id']}", headers=headers("push"))
        assert cancel.status_code == 200 and cancel.get_json()["state"] == "cancelled"
        assert time.monotonic() - started < 10
        done = wait(fleet_client, accepted["id"], headers("push"))
    assert done["state"] == "cancelled" and done["error"]["code"] == "JOB_CANCELLED"
    assert {row["state"] for row in done["engines"]} == {"cancelled"}
    assert done["summary"]["cancelled"] == list(FLEET)
    for client in fleet.values():
        assert image_on(client, target) is None
    services(fleet_app).engines.close()


# --------------------------------------------------------------------------- refused up front


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"target_engines": ["nope"], "via": "stream"}, 404, "ENGINE_NOT_FOUND"),
        (
            {"target_engines": ["fleet-1"], "via": "stream", "source_engine": "x"},
            404,
            "ENGINE_NOT_FOUND",
        ),
        ({"target_engines": ["local"], "via": "stream"}, 400, "VALIDATION_FAILED"),
        ({"target_engines": [], "via": "stream"}, 400, "VALIDATION_FAILED"),
        ({"target_engines": "some", "via": "stream"}, 400, "VALIDATION_FAILED"),
        ({"target_engines": ["fleet-1"], "via": "carrier-pigeon"}, 400, "VALIDATION_FAILED"),
        ({"target_engines": ["fleet-1"], "via": {"registry": "Bad/Ref"}}, 400, "VALIDATION_FAILED"),
        (
            {"target_engines": ["fleet-1"], "via": {"registry": "r:5000/a@sha256:" + "0" * 64}},
            400,
            "VALIDATION_FAILED",
        ),
        (
            {"target_engines": ["fleet-1"], "via": {"registry": "r:5000/a", "x": 1}},
            400,
            "VALIDATION_FAILED",
        ),
    ],
)
def test_bad_requests_are_refused_before_anything_starts(fleet_client, headers, body, status, code):
    response = fleet_client.post(
        "/v1/distributions",
        json={"image": "berth-test/busybox:latest", **body},
        headers=headers("push"),
    )
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == code


def test_image_missing_on_the_source_is_404(fleet_client, headers):
    response = fleet_client.post(
        "/v1/distributions",
        json={"image": f"{unique()}:1", "target_engines": "all", "via": "stream"},
        headers=headers("push"),
    )
    assert response.status_code == 404 and response.get_json()["code"] == "IMAGE_NOT_FOUND"


def test_distributing_needs_the_push_scope(fleet_client, headers):
    body = {"image": "berth-test/busybox:latest", "target_engines": "all", "via": "stream"}
    response = fleet_client.post("/v1/distributions", json=body, headers=headers("write"))
    assert response.status_code == 403 and response.get_json()["code"] == "FORBIDDEN"


def test_unknown_distribution_is_404(fleet_client, headers):
    response = fleet_client.get("/v1/distributions/" + "0" * 32, headers=headers("admin"))
    assert response.status_code == 404
    assert response.get_json()["code"] == "DISTRIBUTION_NOT_FOUND"


# --------------------------------------------------------------------------- plain logic


def test_all_means_every_engine_but_the_source_and_each_must_be_allowed():
    names = ["local", "a", "b"]
    assert resolve_engines(names, "local", None, "all", lambda n: True) == ("local", ["a", "b"])
    assert resolve_engines(names, "local", "a", "all", lambda n: True) == ("a", ["local", "b"])
    assert resolve_engines(names, "local", None, ["b", "b"], lambda n: True) == ("local", ["b"])
    with pytest.raises(Forbidden) as refused:
        resolve_engines(names, "local", None, "all", lambda n: n != "b")
    assert refused.value.extra["engine"] == "b"
    with pytest.raises(EngineNotFound):
        resolve_engines(names, "local", None, ["c"], lambda n: True)
    with pytest.raises(ValidationFailed):
        resolve_engines(["local"], "local", None, "all", lambda n: True)


def test_targets_get_the_image_name_unless_it_was_given_by_id():
    details = {"Id": "sha256:" + "a" * 64, "RepoTags": ["team/app:1.0", "busybox:latest"]}
    assert source_names("team/app:1.0", details) == ("team/app:1.0", ["team/app:1.0"])
    assert source_names("docker.io/library/busybox", details) == (
        "busybox:latest",
        ["busybox:latest"],
    )
    assert source_names("sha256:" + "a" * 64, details) == (details["Id"], [])
    assert source_names("aaaaaaaaaaaa", details) == (details["Id"], [])
    assert source_names("team/app@sha256:" + "b" * 64, details) == (details["Id"], [])


def test_view_follows_the_rows_while_running_and_never_shows_partial_as_success():
    plan = {
        "image": "app:1",
        "image_id": "sha256:" + "a" * 64,
        "source_engine": "local",
        "via": "stream",
        "registry": None,
        "targets": ["a", "b"],
    }
    running = {"state": "running", "result": None, "error": None, "target": "app:1"}
    events = [
        {"status": "start", "distribution": plan},
        {"status": "a: running", "engine": "a", "row": {"engine": "a", "state": "running"}},
        {"status": "a: succeeded", "engine": "a", "row": {"engine": "a", "state": "succeeded"}},
    ]
    view = distribution_view(running, events)
    assert [row["state"] for row in view["engines"]] == ["succeeded", "pending"]
    assert view["summary"]["in_progress"] == ["b"] and view["partial"] is False
    # The worker died: the job failed, and so did the row it left running.
    lost = {**running, "state": "failed", "error": {"code": "JOB_WORKER_LOST"}}
    view = distribution_view(lost, events + [{"row": {"engine": "b", "state": "running"}}])
    assert view["summary"]["failed"] == ["b"] and view["partial"] is True
    assert view["engines"][1]["error"]["code"] == "JOB_WORKER_LOST"


def test_pull_bytes_count_downloads_not_the_extraction_restarting_from_zero():
    moved = PullBytes()
    for line in (
        {"status": "Already exists", "layer": "a", "current": None, "total": None},
        {"status": "Downloading", "layer": "b", "current": 600, "total": 1000},
        {"status": "Downloading", "layer": "b", "current": 1000, "total": 1000},
        {"status": "Extracting", "layer": "b", "current": 10, "total": 1000},
        {"status": "Pull complete", "layer": "b", "current": None, "total": None},
    ):
        moved.feed(line)
        assert moved.done <= 1000
    assert (moved.done, moved.total) == (1000, 1000)


def _tiny_image(client, repository: str, tag: str) -> str:
    """Import a one-file image as ``repository:tag`` on ``client``'s engine; its id."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo(f"mark-{uuid.uuid4().hex}")
        tar.addfile(info, io.BytesIO(b""))
    client.api.import_image_from_data(data.getvalue(), repository=repository, tag=tag)
    return client.images.get(f"{repository}:{tag}").id


def _names(client) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((i.id, tuple(sorted(i.tags))) for i in client.images.list(all=True))


@pytest.mark.parametrize("via", ["registry", "stream"])
def test_distribution_moves_no_local_tag_on_the_source_or_a_target(
    fleet_client, fleet, harness, headers, source_image, docker_client, images, via
):
    image_id, ref = source_image
    target_ref = registry_ref(harness)
    # The source already names another image as the registry reference...
    other_id, _ = images.image(f"echo {uuid.uuid4().hex} > /other")
    docker_client.api.tag(other_id, *target_ref.rsplit(":", 1))
    source_before = _names(docker_client)
    # ...and fleet-1 uses the image's own name for an image of its own.
    repository, tag = ref.rsplit(":", 1)
    own_id = _tiny_image(fleet["fleet-1"], repository, tag)

    body = {"image": ref, "target_engines": ["fleet-1"]}
    body["via"] = {"registry": target_ref} if via == "registry" else "stream"
    done = wait(fleet_client, start(fleet_client, body, headers("push"))["id"], headers("push"))

    assert done["state"] == "succeeded", done
    assert done["engines"][0]["image_id"] == image_id
    assert _names(docker_client) == source_before
    assert fleet["fleet-1"].images.get(ref).id == own_id
    assert image_on(fleet["fleet-1"], image_id) is not None
    if via == "registry":  # a name fleet-1 did not use is given
        assert fleet["fleet-1"].images.get(target_ref).id == image_id
    assert not any("berth-hold" in t for _, tags in _names(fleet["fleet-1"]) for t in tags)
