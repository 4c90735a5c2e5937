"""Put images into the harness registries and read them back, without going through Berth."""

from __future__ import annotations

import base64
import json
from typing import Any

import docker
import requests

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def registry_auth_header(username: str, password: str, server: str | None = None) -> str:
    """An ``X-Registry-Auth`` value, as the Docker CLI builds it."""
    payload: dict[str, Any] = {"username": username, "password": password}
    if server:
        payload["serveraddress"] = server
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def basic_credentials(harness: dict[str, Any]) -> dict[str, str]:
    basic = harness["registries"]["basic"]
    return {"username": basic["username"], "password": basic["password"]}


def push_image(
    client: docker.DockerClient,
    image: str,
    reference: str,
    auth: dict[str, str] | None = None,
) -> None:
    """Tag ``image`` as ``reference`` (``host:port/name:tag``) and push it with docker-py."""
    repository, _, tag = reference.rpartition(":")
    client.api.tag(image, repository, tag, force=True)
    for event in client.api.push(repository, tag, stream=True, decode=True, auth_config=auth):
        if "error" in event or "errorDetail" in event:
            raise AssertionError(f"push of {reference} failed: {event}")


def served_digest(
    address: str, name: str, tag: str, auth: tuple[str, str] | None = None, token: str | None = None
) -> str | None:
    """The registry's own ``Docker-Content-Digest`` for ``name:tag`` (None when unknown)."""
    headers = {"Accept": MANIFEST_ACCEPT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.head(
        f"http://{address}/v2/{name}/manifests/{tag}", headers=headers, auth=auth, timeout=10
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]
