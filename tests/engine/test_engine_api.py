"""docker-py through Berth's Engine-API front door, and the front door's own rules: refusals in
the engine's error shape, the outbound policy, image events only, audit records, metrics."""

from __future__ import annotations

import io
import json
import tarfile
import time

import docker
import pytest
import requests
from docker.errors import APIError, NotFound

from tests.support.engine_api import front_door
from tests.support.images import unique
from tests.support.search_index import SearchIndex

REPOS = [{"name": "acme/berth-tools", "description": "tools", "star_count": 7}]


@pytest.fixture(scope="module")
def index():
    with SearchIndex(REPOS) as idx:
        yield idx


@pytest.fixture(scope="module")
def door(harness, tmp_path_factory, index):
    data_dir = tmp_path_factory.mktemp("engine-api")
    with front_door(harness, data_dir, [f"127.0.0.1:{index.port}"]) as (server, tokens):
        yield server, tokens, data_dir


@pytest.fixture
def client(door, tmp_path, monkeypatch):
    """docker-py's DockerClient on Berth, its token from config.json's HttpHeaders."""
    server, tokens, _ = door
    (tmp_path / "config.json").write_text(
        json.dumps({"HttpHeaders": {"Authorization": f"Bearer {tokens['images']}"}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    made = docker.DockerClient(base_url=server.url.replace("http", "tcp") + "/engines/local")
    yield made
    made.close()


@pytest.fixture
def cleanup(docker_client):
    names: list[str] = []
    yield names
    for name in reversed(names):
        try:
            docker_client.api.remove_image(name, force=True)
        except APIError:
            pass


def _url(door, path: str) -> str:
    return f"{door[0].url}/engines/local{path}"


def _headers(door, token: str = "images") -> dict[str, str]:
    return {"Authorization": f"Bearer {door[1][token]}"}


def test_docker_py_lists_gets_and_searches(client, docker_client, base_image, index):
    assert client.version()["ApiVersion"] == "1.41"
    assert base_image in {tag for image in client.images.list() for tag in image.tags}
    assert client.images.get(base_image).id == docker_client.images.get(base_image).id
    results = client.images.search(f"127.0.0.1:{index.port}/tools")
    assert [r["name"] for r in results] == ["acme/berth-tools"]


def test_docker_py_push_pull_save_load_remove(client, harness, docker_client, cleanup):
    repo = f"{harness['registries']['open']['address']}/{unique('berth-py')}"
    cleanup.append(f"{repo}:1")
    image = client.images.get(harness["base_image"])
    assert image.tag(repo, "1")
    pushed = client.images.push(repo, "1")
    assert "digest: sha256:" in pushed
    client.images.remove(f"{repo}:1")
    with pytest.raises(NotFound):
        docker_client.images.get(f"{repo}:1")
    assert client.images.pull(repo, "1").id == image.id
    archive = b"".join(client.images.get(f"{repo}:1").save(named=True))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "manifest.json" in tar.getnames()
    client.images.remove(f"{repo}:1")
    loaded = client.images.load(archive)
    assert [i.id for i in loaded] == [image.id]
    assert f"{repo}:1" in docker_client.images.get(image.id).tags


def test_docker_py_commit_export_and_prune(client, images, docker_client, cleanup):
    container_id = images.container("echo hi > /hello")
    container = client.containers.get(container_id)
    repo = unique("berth-py")
    committed = container.commit(repository=repo, tag="1")
    cleanup.append(committed.id)
    assert docker_client.images.get(f"{repo}:1").id == committed.id
    exported = b"".join(container.export())
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        assert tar.extractfile("hello").read() == b"hi\n"
    docker_client.api.tag(images.base, repo, "1")  # the committed image is now dangling
    pruned = client.images.prune(filters={"dangling": True})
    assert committed.id in {d.get("Deleted") for d in pruned["ImagesDeleted"] or []}


def test_refusals_use_the_engine_error_shape(door):
    for method, path in (
        ("POST", "/v1.41/containers/create"),
        ("POST", "/containers/abc/start"),
        ("POST", "/v1.41/build"),
        ("GET", "/v1.41/volumes"),
        ("POST", "/session"),
        ("GET", "/v1.41/swarm"),
    ):
        answer = requests.request(method, _url(door, path), headers=_headers(door), timeout=10)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["message"].startswith("Berth allows image operations only")
    anonymous = requests.get(_url(door, "/v1.41/images/json"), timeout=10)
    assert anonymous.status_code == 401 and "HttpHeaders" in anonymous.json()["message"]


def test_pull_and_import_from_outside_are_refused(door):
    pull = requests.post(
        _url(door, "/v1.41/images/create?fromImage=127.0.0.1:1/x&tag=1"),
        headers=_headers(door),
        timeout=10,
    )
    assert pull.status_code == 403 and "127.0.0.1:1 is not allowed" in pull.json()["message"]
    fetch = requests.post(
        _url(door, "/v1.41/images/create?fromSrc=http://127.0.0.1:1/rootfs.tar&repo=x"),
        headers=_headers(door),
        timeout=10,
    )
    assert fetch.status_code == 403 and "fromSrc=-" in fetch.json()["message"]
    bad = requests.post(
        _url(door, "/v1.41/images/create?fromImage=UPPER/x"), headers=_headers(door), timeout=10
    )
    assert bad.status_code == 400 and "lowercase" in bad.json()["message"]


def test_engine_answers_pass_through_with_their_headers(door, base_image):
    ping = requests.head(_url(door, "/_ping"), headers=_headers(door), timeout=10)
    assert ping.status_code == 200 and ping.headers["Api-Version"] == "1.41"
    assert ping.headers["OSType"] == "linux" and "Docker-Experimental" in ping.headers
    missing = requests.get(
        _url(door, "/v1.41/images/berth-no-such-image:1/json"), headers=_headers(door), timeout=10
    )
    assert missing.status_code == 404 and "No such image" in missing.json()["message"]
    inspected = requests.get(
        _url(door, f"/images/{base_image}/json"), headers=_headers(door), timeout=10
    )
    assert base_image in inspected.json()["RepoTags"]


def test_events_are_image_events_only(door, harness, docker_client, images):
    since = int(time.time()) - 1
    images.container("true")  # container events...
    name = unique("berth-ev")
    docker_client.api.tag(harness["base_image"], name, "1")  # ...and an image event
    images.track(f"{name}:1")
    until = int(time.time()) + 1
    filters = json.dumps({"type": ["container"]})
    answer = requests.get(
        _url(door, "/v1.41/events"),
        params={"since": since, "until": until, "filters": filters},
        headers=_headers(door),
        timeout=30,
    )
    events = [json.loads(line) for line in answer.text.splitlines() if line]
    assert events and {e["Type"] for e in events} == {"image"}
    assert any(e.get("Action") == "tag" for e in events)


def test_mutations_and_refusals_are_audited_and_counted(door, harness):
    server, tokens, data_dir = door
    requests.post(_url(door, "/v1.41/containers/create"), headers=_headers(door), timeout=10)
    requests.delete(
        _url(door, f"/v1.41/images/{harness['base_image']}"),
        headers=_headers(door, "read"),
        timeout=10,
    )
    requests.get(_url(door, "/v1.41/volumes"), headers=_headers(door), timeout=10)

    def records():
        path = data_dir / "audit.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(records()) < 3:
        time.sleep(0.1)
    refused = [r for r in records() if r["status"] == 403]
    found = {
        (r["method"], r["path"].split("/v1.41/")[-1], r["status"], r["token"]) for r in refused
    }
    assert ("POST", "containers/create", 403, "images") in found
    assert ("DELETE", f"images/{harness['base_image']}", 403, "read") in found
    assert ("GET", "volumes", 403, "images") in found
    for record in refused:
        assert record["engine"] == "local" and record["result"] == "failure"
    pulled = [r for r in records() if r["operation"] == "engine_api.post_images_create"]
    assert pulled and pulled[0]["result"] == "success" and pulled[0]["target"]
    metrics = requests.get(f"{server.url}/metrics", headers=_headers(door, "metrics"), timeout=10)
    assert 'route="/engines/<engine>/v<version>/images/json"' in metrics.text
