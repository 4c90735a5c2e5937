"""Push against the harness's real registries: honest statuses, verified digests, credentials."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.harness import harness_module
from tests.support.registry import (
    MANIFEST_ACCEPT,
    basic_credentials,
    push_image,
    registry_auth_header,
    served_digest,
)
from tests.support.token_issuer import token_issuer


def _name() -> str:
    return f"push{uuid.uuid4().hex[:10]}/app"


def _auth_file(tmp_path: Path, address: str, username: str, password: str) -> str:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    path = tmp_path / "registry-auth.json"
    path.write_text(json.dumps({"auths": {address: {"auth": auth}}}))
    path.chmod(0o600)
    return str(path)


def _ndjson(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines() if line]


@pytest.fixture
def image(images):
    """A fresh image of its own (a layer no registry has seen yet)."""
    image_id, ref = images.image(f"echo {uuid.uuid4().hex} > /marker")
    return {"id": image_id, "ref": ref}


@pytest.fixture
def open_registry(harness):
    return harness["registries"]["open"]["address"]


@pytest.fixture
def basic_registry(harness):
    return harness["registries"]["basic"]["address"]


def test_push_answers_the_digest_the_registry_serves(
    client, headers, image, open_registry, docker_client, images
):
    name = _name()
    target = f"{open_registry}/{name}:1.0"
    response = client.post(
        f"/v1/images/{image['ref']}/push", json={"target": target}, headers=headers("push")
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["reference"] == target
    assert body["id"] == image["id"]
    assert body["digest"] == served_digest(open_registry, name, "1.0")
    assert isinstance(body["size"], int) and body["size"] > 0
    # The digest names this very image: drop every local copy, pull it back by digest.
    docker_client.api.remove_image(image["id"], force=True)
    docker_client.api.pull(f"{open_registry}/{name}", tag=body["digest"])
    pulled = docker_client.api.inspect_image(f"{open_registry}/{name}@{body['digest']}")
    images.track(pulled["Id"])
    assert pulled["Id"] == image["id"]


def test_push_of_a_reference_that_names_the_registry(
    client, headers, image, open_registry, docker_client, images
):
    name = _name()
    docker_client.api.tag(image["id"], f"{open_registry}/{name}", "v2")
    response = client.post(f"/v1/images/{open_registry}/{name}:v2/push", headers=headers("push"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["reference"] == f"{open_registry}/{name}:v2"
    assert response.get_json()["digest"] == served_digest(open_registry, name, "v2")


def test_push_without_tag_pushes_latest_only(client, headers, image, open_registry, docker_client):
    name = _name()
    docker_client.api.tag(image["id"], f"{open_registry}/{name}", "latest")
    docker_client.api.tag(image["id"], f"{open_registry}/{name}", "other")
    response = client.post(f"/v1/images/{open_registry}/{name}/push", headers=headers("push"))
    assert response.status_code == 200
    assert response.get_json()["reference"] == f"{open_registry}/{name}:latest"
    assert served_digest(open_registry, name, "other") is None


def test_push_streams_progress_then_one_result_line(client, headers, image, open_registry):
    name = _name()
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{open_registry}/{name}:s"},
        headers={**headers("push"), "Accept": "application/x-ndjson"},
    )
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    lines = _ndjson(response)
    assert all(set(line) == {"status", "layer", "current", "total"} for line in lines[:-1])
    assert any(line["status"] == "Pushed" for line in lines[:-1])
    assert list(lines[-1]) == ["result"]
    assert lines[-1]["result"]["digest"] == served_digest(open_registry, name, "s")


def test_push_failure_ends_the_stream_with_one_error_line(client, headers, image, basic_registry):
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{basic_registry}/{_name()}:1"},
        headers={**headers("push"), "Accept": "application/x-ndjson"},
    )
    lines = _ndjson(response)
    assert list(lines[-1]) == ["error"]
    assert lines[-1]["error"]["code"] == "REGISTRY_AUTH_FAILED"
    assert lines[-1]["error"]["status"] == 403
    assert not any("result" in line for line in lines)


def test_push_without_credentials_is_403(client, headers, image, basic_registry):
    name = _name()
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{basic_registry}/{name}:1"},
        headers=headers("push"),
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "REGISTRY_AUTH_FAILED"


def test_push_with_wrong_credentials_is_403(client, headers, image, basic_registry, harness):
    auth = registry_auth_header(harness["registries"]["basic"]["username"], "wrong-password")
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{basic_registry}/{_name()}:1"},
        headers={**headers("push"), "X-Registry-Auth": auth},
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "REGISTRY_AUTH_FAILED"


def test_push_with_request_credentials(client, headers, image, basic_registry, harness):
    creds = basic_credentials(harness)
    name = _name()
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{basic_registry}/{name}:1"},
        headers={
            **headers("push"),
            "X-Registry-Auth": registry_auth_header(creds["username"], creds["password"]),
        },
    )
    assert response.status_code == 200, response.get_json()
    digest = served_digest(basic_registry, name, "1", (creds["username"], creds["password"]))
    assert response.get_json()["digest"] == digest


def test_push_with_stored_credentials(
    config, request, tmp_path, headers, image, basic_registry, harness
):
    creds = basic_credentials(harness)
    config["BERTH_REGISTRY_AUTH_FILE"] = _auth_file(
        tmp_path, basic_registry, creds["username"], creds["password"]
    )
    client = request.getfixturevalue("client")
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{basic_registry}/{_name()}:1"},
        headers=headers("push"),
    )
    assert response.status_code == 200, response.get_json()


def test_request_credentials_win_over_wrong_stored_ones(
    config, request, tmp_path, headers, image, basic_registry, harness
):
    creds = basic_credentials(harness)
    config["BERTH_REGISTRY_AUTH_FILE"] = _auth_file(
        tmp_path, basic_registry, creds["username"], "stale-stored-password"
    )
    client = request.getfixturevalue("client")
    target = {"target": f"{basic_registry}/{_name()}:1"}
    stored_only = client.post(
        f"/v1/images/{image['ref']}/push", json=target, headers=headers("push")
    )
    assert stored_only.status_code == 403  # the stored password really is wrong
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json=target,
        headers={
            **headers("push"),
            "X-Registry-Auth": registry_auth_header(creds["username"], creds["password"]),
        },
    )
    assert response.status_code == 200, response.get_json()


def test_pull_uses_the_same_credentials_rule(
    config, request, tmp_path, headers, image, basic_registry, harness, docker_client, images
):
    creds = basic_credentials(harness)
    name = _name()
    push_image(docker_client, image["id"], f"{basic_registry}/{name}:1", creds)
    docker_client.api.remove_image(image["id"], force=True)
    images.track(image["id"])
    config["BERTH_REGISTRY_AUTH_FILE"] = _auth_file(
        tmp_path, basic_registry, creds["username"], "stale-stored-password"
    )
    client = request.getfixturevalue("client")
    body = {"reference": f"{basic_registry}/{name}:1"}
    stored_only = client.post("/v1/images/pull", json=body, headers=headers("write"))
    assert stored_only.status_code == 403
    response = client.post(
        "/v1/images/pull",
        json=body,
        headers={
            **headers("write"),
            "X-Registry-Auth": registry_auth_header(creds["username"], creds["password"]),
        },
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id"] == image["id"]
    # and the stored credentials alone, once right, are enough
    _auth_file(tmp_path, basic_registry, creds["username"], creds["password"])
    docker_client.api.remove_image(image["id"], force=True)
    again = client.post("/v1/images/pull", json=body, headers=headers("write"))
    assert again.status_code == 200, again.get_json()


def test_push_to_token_registry(client, headers, image, harness):
    issuer = token_issuer(harness)
    issuer.reset()
    address = harness["registries"]["token"]["address"]
    creds = basic_credentials(harness)
    name = _name()
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{address}/{name}:1"},
        headers={
            **headers("push"),
            "X-Registry-Auth": registry_auth_header(creds["username"], creds["password"]),
        },
    )
    assert response.status_code == 200, response.get_json()
    token = harness_module().make_registry_token(
        harness, [{"type": "repository", "name": name, "actions": ["pull"]}]
    )
    assert response.get_json()["digest"] == served_digest(address, name, "1", token=token)
    assert any(f"repository:{name}:push,pull" in r["scopes"] for r in issuer.requests)
    # without credentials the token service refuses the engine
    refused = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{address}/{_name()}:1"},
        headers=headers("push"),
    )
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "REGISTRY_AUTH_FAILED"


def test_push_to_stopped_registry_is_502(client, headers, image, harness):
    module = harness_module()
    state = module.load_state(harness["dir"])
    address = state["registries"]["open"]["address"]
    module.stop_registry(state, "open")
    try:
        response = client.post(
            f"/v1/images/{image['ref']}/push",
            json={"target": f"{address}/{_name()}:1"},
            headers=headers("push"),
        )
        assert response.status_code == 502
        assert response.get_json()["code"] == "REGISTRY_UNREACHABLE"
    finally:
        module.start_registry(state, "open")
        module.save_state(state)


def test_push_of_unknown_image_is_404(client, headers, open_registry):
    response = client.post(
        f"/v1/images/nothing-{uuid.uuid4().hex[:8]}:1/push",
        json={"target": f"{open_registry}/{_name()}:1"},
        headers=headers("push"),
    )
    assert response.status_code == 404
    assert response.get_json()["code"] == "IMAGE_NOT_FOUND"
    local = client.post(f"/v1/images/{open_registry}/{_name()}:1/push", headers=headers("push"))
    assert local.status_code == 404


def test_push_needs_something_pushable(client, headers, image, open_registry):
    by_id = client.post(f"/v1/images/{image['id']}/push", headers=headers("push"))
    assert by_id.status_code == 400
    by_digest = client.post(
        f"/v1/images/{open_registry}/x/y@sha256:{'a' * 64}/push", headers=headers("push")
    )
    assert by_digest.status_code == 400
    target_digest = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{open_registry}/x@sha256:{'a' * 64}"},
        headers=headers("push"),
    )
    assert target_digest.status_code == 400
    assert target_digest.get_json()["code"] == "VALIDATION_FAILED"
    unknown = client.post(
        f"/v1/images/{image['ref']}/push", json={"tags": "x"}, headers=headers("push")
    )
    assert unknown.status_code == 400


def test_push_needs_the_push_scope(client, headers, image, open_registry):
    response = client.post(
        f"/v1/images/{image['ref']}/push",
        json={"target": f"{open_registry}/{_name()}:1"},
        headers=headers("write"),
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "FORBIDDEN"


def test_credentials_never_reach_logs_responses_or_job_records(
    config, request, tmp_path, caplog, capfd, headers, image, basic_registry, harness
):
    creds = basic_credentials(harness)
    wrong_secret = f"wrong-{uuid.uuid4().hex}"
    stored_secret = f"stored-{uuid.uuid4().hex}"
    config["BERTH_LOG_LEVEL"] = "DEBUG"
    config["BERTH_REGISTRY_AUTH_FILE"] = _auth_file(
        tmp_path, "127.0.0.2:1", creds["username"], stored_secret
    )
    client = request.getfixturevalue("client")
    good = registry_auth_header(creds["username"], creds["password"], basic_registry)
    wrong = registry_auth_header(creds["username"], wrong_secret, basic_registry)
    secrets_ = [creds["password"], wrong_secret, stored_secret, good, wrong]
    bodies = []
    loggers = ["berth", "docker", "urllib3", "requests", ""]
    for name in loggers:
        caplog.set_level("DEBUG", logger=name)
    berth_logger = logging.getLogger("berth")  # it does not propagate to the root logger
    berth_logger.addHandler(caplog.handler)
    request.addfinalizer(lambda: berth_logger.removeHandler(caplog.handler))

    def call(method, url, auth, **kwargs):
        response = getattr(client, method)(
            url,
            headers={**headers("admin"), "X-Registry-Auth": auth, **kwargs.pop("h", {})},
            **kwargs,
        )
        bodies.append(response.get_data(as_text=True))
        return response

    push = f"/v1/images/{image['ref']}/push"
    assert (
        call("post", push, good, json={"target": f"{basic_registry}/{_name()}:1"}).status_code
        == 200
    )
    assert (
        call("post", push, wrong, json={"target": f"{basic_registry}/{_name()}:1"}).status_code
        == 403
    )
    call(
        "post",
        push,
        wrong,
        json={"target": f"{basic_registry}/{_name()}:1"},
        h={"Accept": "application/x-ndjson"},
    )
    for auth in (good, wrong):
        accepted = call(
            "post",
            push,
            auth,
            json={"target": f"{basic_registry}/{_name()}:2"},
            h={"Prefer": "respond-async"},
        )
        assert accepted.status_code == 202
        job = _wait(client, accepted.headers["Location"], headers("admin"))
        bodies.append(json.dumps(job))
        bodies.append(
            client.get(accepted.headers["Location"] + "/events", headers=headers("admin")).get_data(
                as_text=True
            )
        )
    assert call("get", f"/v1/registries/{basic_registry}/repositories", good).status_code == 200
    assert call("get", f"/v1/registries/{basic_registry}/repositories", wrong).status_code == 403
    call("get", "/v1/registries/127.0.0.2:1/repositories", "")  # stored secret, unreachable
    call("get", f"/v1/search?term=a&registry={basic_registry}", wrong)

    for handler in berth_logger.handlers:  # lines still waiting in a log writer thread
        handler.flush()
    captured = capfd.readouterr()
    texts = {
        "caplog": caplog.text + "\n".join(str(r.__dict__) for r in caplog.records),
        "stderr": captured.err + captured.out,
        "responses": "\n".join(bodies),
    }
    data_dir = Path(config["BERTH_DATA_DIR"])
    for path in data_dir.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("latin-1")
    assert any("jobs.sqlite3" in key for key in texts)
    assert caplog.records  # the logs really were captured
    for where, text in texts.items():
        for secret in secrets_:
            assert secret not in text, f"a credential leaked into {where}"


def _wait(client, location, auth_headers, timeout=60):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(location, headers=auth_headers).get_json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {location} did not finish")


# --------------------------------------------------------------------------- local tags


def _local_names(docker_client) -> list[tuple[str, tuple[str, ...]]]:
    """Every local image with its tags: what a push must leave exactly as it found it."""
    return sorted(
        (image["Id"], tuple(sorted(image.get("RepoTags") or [])))
        for image in docker_client.api.images(all=True)
    )


def _served_config(address: str, name: str, tag: str) -> str:
    """The config digest (the image id) of the manifest the registry serves for ``name:tag``."""
    response = requests.get(
        f"http://{address}/v2/{name}/manifests/{tag}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["config"]["digest"]


def _push(client, headers, ref, target, mode, auth=None):
    """Push ``ref`` as ``target`` answered as JSON, as an NDJSON stream, or as a job; the
    outcome as ``(status, body)`` with the body of the result or of the error."""
    sent = {**headers("push"), **({"X-Registry-Auth": auth} if auth else {})}
    if mode == "ndjson":
        sent["Accept"] = "application/x-ndjson"
    if mode == "async":
        sent["Prefer"] = "respond-async"
    response = client.post(f"/v1/images/{ref}/push", json={"target": target}, headers=sent)
    if mode == "ndjson":
        last = _ndjson(response)[-1]
        return (
            (200, last["result"]) if "result" in last else (last["error"]["status"], last["error"])
        )
    if mode == "async":
        assert response.status_code == 202, response.get_json()
        job = _wait(client, response.headers["Location"], headers("admin"))
        return (200, job["result"]) if job["state"] == "succeeded" else (0, job["error"])
    return response.status_code, response.get_json()


@pytest.mark.parametrize("mode", ["json", "ndjson", "async"])
def test_push_leaves_a_target_tag_naming_another_image_as_it_was(
    client, headers, image, images, open_registry, docker_client, mode
):
    other_id, _ = images.image(f"echo {uuid.uuid4().hex} > /other")
    name = _name()
    target = f"{open_registry}/{name}:1.0"
    docker_client.api.tag(other_id, f"{open_registry}/{name}", "1.0")
    before = _local_names(docker_client)

    status, body = _push(client, headers, image["ref"], target, mode)

    assert status == 200, body
    assert body["id"] == image["id"]
    assert body["digest"] == served_digest(open_registry, name, "1.0")
    assert _served_config(open_registry, name, "1.0") == image["id"]  # this image, not the other
    assert docker_client.api.inspect_image(target)["Id"] == other_id
    assert _local_names(docker_client) == before


@pytest.mark.parametrize("mode", ["json", "ndjson", "async"])
def test_a_failed_push_leaves_every_local_tag_as_it_was(
    client, headers, image, images, basic_registry, docker_client, mode
):
    other_id, _ = images.image(f"echo {uuid.uuid4().hex} > /other")
    taken = f"{basic_registry}/{_name()}:1"
    docker_client.api.tag(other_id, taken.rsplit(":", 1)[0], "1")
    before = _local_names(docker_client)

    for target in (taken, f"{basic_registry}/{_name()}:1"):  # named another image; named nothing
        status, body = _push(client, headers, image["ref"], target, mode)  # no credentials
        assert body["code"] == "REGISTRY_AUTH_FAILED", body
        assert status != 200
        assert _local_names(docker_client) == before

    assert docker_client.api.inspect_image(taken)["Id"] == other_id


def test_a_push_to_a_stopped_registry_leaves_the_target_tag_as_it_was(
    client, headers, image, images, harness, docker_client
):
    module = harness_module()
    state = module.load_state(harness["dir"])
    address = state["registries"]["open"]["address"]
    other_id, _ = images.image(f"echo {uuid.uuid4().hex} > /other")
    taken = f"{address}/{_name()}"
    docker_client.api.tag(other_id, taken, "1")
    before = _local_names(docker_client)
    module.stop_registry(state, "open")
    try:
        response = client.post(
            f"/v1/images/{image['ref']}/push",
            json={"target": f"{taken}:1"},
            headers=headers("push"),
        )
        assert response.status_code == 502
    finally:
        module.start_registry(state, "open")
        module.save_state(state)
    assert _local_names(docker_client) == before


def test_a_new_target_name_is_not_left_behind(client, headers, image, open_registry, docker_client):
    before = _local_names(docker_client)
    name = _name()
    status, body = _push(client, headers, image["ref"], f"{open_registry}/{name}:2", "json")
    assert status == 200, body
    assert _served_config(open_registry, name, "2") == image["id"]
    assert _local_names(docker_client) == before
    assert not any("berth-hold" in tag for _, tags in before for tag in tags)


def test_a_target_that_already_names_the_image_stays(
    client, headers, image, open_registry, docker_client
):
    name = _name()
    docker_client.api.tag(image["id"], f"{open_registry}/{name}", "3")
    before = _local_names(docker_client)
    status, body = _push(client, headers, image["ref"], f"{open_registry}/{name}:3", "json")
    assert status == 200, body
    assert _local_names(docker_client) == before
