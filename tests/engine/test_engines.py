"""Several engines behind one Berth: ?engine=, /v1/engines, token engine limits."""

import time

import pytest

from app import create_app
from app.engine.pool import EngineSpecError, engine_environments
from app.http.accessors import services
from tests.support.tokens import TOKENS


@pytest.fixture
def fleet_app(harness, tmp_path, config):
    config = dict(config)
    config["BERTH_ENGINES"] = {
        "local": harness["docker_host"],
        "staging-1": {"host": harness["docker_host"]},
        "down": f"unix://{tmp_path}/absent.sock",
    }
    config["BERTH_TOKENS"] = config["BERTH_TOKENS"] + [
        {
            "name": "staging-only",
            "token": "staging-token-0123456789",
            "scopes": ["read"],
            "engines": ["staging-*"],
        },
    ]
    app = create_app(config)
    yield app
    services(app).engines.close()


STAGING = {"Authorization": "Bearer staging-token-0123456789"}


def test_engines_lists_reachability_version_and_images(fleet_app, headers):
    started = time.monotonic()
    body = fleet_app.test_client().get("/v1/engines", headers=headers("read")).get_json()
    assert time.monotonic() - started < 10
    rows = {row["name"]: row for row in body["engines"]}
    assert body["default"] == "local"
    assert rows["local"]["reachable"] and rows["local"]["api_version"] == "1.41"
    assert rows["local"]["images"] >= 1
    assert rows["down"]["reachable"] is False and rows["down"]["error"]
    assert "absent.sock" not in rows["down"]["error"]


def test_engine_parameter_selects_the_engine(fleet_app, headers, images):
    image_id, ref = images.image("true")
    client = fleet_app.test_client()
    on_staging = client.get(f"/v1/images/{ref}?engine=staging-1", headers=headers("read"))
    assert on_staging.status_code == 200 and on_staging.get_json()["id"] == image_id
    down = client.get(f"/v1/images/{ref}?engine=down", headers=headers("read"))
    assert down.status_code == 503 and down.get_json()["code"] == "ENGINE_UNAVAILABLE"
    # A down engine does not affect the others.
    assert client.get(f"/v1/images/{ref}", headers=headers("read")).status_code == 200


def test_unknown_engine_is_404(fleet_app, headers):
    response = fleet_app.test_client().get("/v1/images?engine=nope", headers=headers("read"))
    assert response.status_code == 404
    assert response.get_json()["code"] == "ENGINE_NOT_FOUND"


def test_token_limited_to_engines(fleet_app):
    client = fleet_app.test_client()
    assert client.get("/v1/images?engine=staging-1", headers=STAGING).status_code == 200
    refused = client.get("/v1/images?engine=local", headers=STAGING)
    assert refused.status_code == 403 and refused.get_json()["code"] == "ENGINE_FORBIDDEN"
    assert client.get("/v1/images", headers=STAGING).status_code == 403  # default is local
    listed = client.get("/v1/engines", headers=STAGING).get_json()
    assert [row["name"] for row in listed["engines"]] == ["staging-1"]


def test_engine_parameter_is_documented_on_engine_operations(offline_app):
    paths = offline_app.extensions["berth.openapi"]["paths"]
    params = [p.get("name") for p in paths["/v1/images/{ref}"]["get"]["parameters"]]
    assert "engine" in params
    assert "engine" not in [p.get("name") for p in paths["/v1/health"]["get"].get("parameters", [])]


def test_token_engines_default_to_all(offline_client, headers):
    assert TOKENS["read"]
    response = offline_client.get("/v1/images?engine=local", headers=headers("read"))
    assert response.status_code == 503  # allowed; the offline engine is absent


@pytest.mark.parametrize(
    "engines",
    [
        {"Bad Name": "unix:///x"},
        {"a": {"hots": "unix:///x"}},
        {"a": "ftp://x"},
        {"a": 5},
        ["unix:///x"],
    ],
)
def test_bad_engine_specs_are_refused(engines):
    with pytest.raises(EngineSpecError):
        engine_environments(engines, {})


def test_engine_specs_become_docker_environments():
    envs = engine_environments(
        {
            "a": "tcp://engine-a.example:2376",
            "b": {"host": "tcp://h:2376", "tls_verify": True, "cert_path": "/certs"},
        },
        {},
    )
    assert envs["a"] == {"DOCKER_HOST": "tcp://engine-a.example:2376"}
    assert envs["b"] == {
        "DOCKER_HOST": "tcp://h:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs",
    }
    assert engine_environments(None, {"DOCKER_HOST": "unix:///s"}) == {
        "local": {"DOCKER_HOST": "unix:///s"}
    }
