"""The host's docker credentials (DOCKER_CONFIG / ~/.docker/config.json) are never used."""

import base64
import json

from tests.support.images import unique


def test_push_without_credentials_ignores_the_hosts_docker_config(
    client, headers, images, harness, tmp_path, monkeypatch
):
    registry = harness["registries"]["basic"]
    secret = base64.b64encode(f"{registry['username']}:{registry['password']}".encode()).decode()
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {registry["address"]: {"auth": secret}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # where docker-py looks for host creds
    _, ref = images.image("true")
    target = f"{registry['address']}/{unique()}:1"
    response = client.post(
        f"/v1/images/{ref}/push", json={"target": target}, headers=headers("push")
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "REGISTRY_AUTH_FAILED"
    pulled = client.post("/v1/images/pull", json={"reference": target}, headers=headers("write"))
    assert pulled.status_code == 403
