"""POST /v1/images/pull against the real engine and the harness's registries (`docker pull`).

Images are pushed to the harness's registries with docker-py first; Berth then pulls them back.
A small fake registry in this module serves a corrupt layer, so that the engine reports the
failure inside its 200 stream, the case Berth must never answer with a 200.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import create_app
from app.domain.registry_auth import encode_registry_auth
from app.http.accessors import services
from tests.support.gunicorn import free_port
from tests.support.images import unique
from tests.support.token_issuer import token_issuer

NDJSON = {"Accept": "application/x-ndjson"}


def pull(client, headers, scope="write", extra=None, **body):
    return client.post("/v1/images/pull", json=body, headers={**headers(scope), **(extra or {})})


def ndjson_lines(response):
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines() if line]


@pytest.fixture
def pushed(docker_client, harness, base_image, images):
    """Push the base image to a registry as ``<registry>/<unique>:<tag>``; returns a helper."""
    made = []

    def push(registry="open", tag="latest", credentials=None):
        address = harness["registries"][registry]["address"]
        repository = f"{address}/{unique('pull')}"
        docker_client.api.tag(base_image, repository, tag)
        made.append(f"{repository}:{tag}")
        for line in docker_client.api.push(
            repository, tag, stream=True, decode=True, auth_config=credentials
        ):
            assert "error" not in line, line
        digest = docker_client.images.get_registry_data(
            f"{repository}:{tag}", auth_config=credentials
        ).id
        docker_client.api.remove_image(f"{repository}:{tag}")  # pull must really fetch it
        return repository, digest

    yield push
    for ref in made:
        try:
            docker_client.api.remove_image(ref)
        except Exception:
            pass


def forget(docker_client, ref):
    try:
        docker_client.api.remove_image(ref)
    except Exception:
        pass


def test_pull_without_tag_means_latest_and_returns_id_and_digest(
    client, headers, pushed, docker_client, base_image
):
    repository, digest = pushed(tag="latest")
    docker_client.api.tag(base_image, repository, "other")
    docker_client.api.push(repository, "other")
    forget(docker_client, f"{repository}:other")
    try:
        answer = pull(client, headers, reference=repository)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert body["reference"] == f"{repository}:latest"
        assert body["digest"] == digest
        assert body["id"] == docker_client.images.get(base_image).id
        local = docker_client.images.get(f"{repository}:latest")
        assert f"{repository}@{digest}" in local.attrs["RepoDigests"]
        # A bare name is never "all tags": the other tag was not pulled.
        assert f"{repository}:other" not in local.tags
    finally:
        forget(docker_client, f"{repository}:latest")


def test_pull_by_digest(client, headers, pushed, docker_client):
    repository, digest = pushed(tag="v1")
    answer = pull(client, headers, reference=f"{repository}@{digest}")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["reference"] == f"{repository}@{digest}"
    assert answer.get_json()["digest"] == digest
    forget(docker_client, f"{repository}@{digest}")


def test_missing_tag_is_404_manifest_unknown(client, headers, pushed):
    repository, _ = pushed(tag="v1")
    answer = pull(client, headers, reference=f"{repository}:nope")
    assert answer.status_code == 404
    problem = answer.get_json()
    assert problem["code"] == "MANIFEST_UNKNOWN"
    assert "manifest unknown" in problem["detail"]


def test_missing_repository_is_404_manifest_unknown(client, headers, harness):
    address = harness["registries"]["open"]["address"]
    answer = pull(client, headers, reference=f"{address}/{unique('absent')}:1")
    assert answer.status_code == 404
    assert answer.get_json()["code"] == "MANIFEST_UNKNOWN"


def test_unreachable_registry_is_502(app_allowing, headers):
    port = free_port()
    client = app_allowing(f"127.0.0.1:{port}").test_client()
    answer = pull(client, headers, reference=f"127.0.0.1:{port}/team/app:1")
    assert answer.status_code == 502
    problem = answer.get_json()
    assert problem["code"] == "REGISTRY_UNREACHABLE"
    assert "connection refused" in problem["detail"]


def test_unreachable_registry_with_ndjson_is_a_problem_not_a_stream(app_allowing, headers):
    port = free_port()
    client = app_allowing(f"127.0.0.1:{port}").test_client()
    answer = pull(client, headers, extra=NDJSON, reference=f"127.0.0.1:{port}/team/app:1")
    assert answer.status_code == 502
    assert answer.mimetype == "application/problem+json"


def test_basic_registry_without_credentials_is_403(client, headers, pushed, harness):
    basic = harness["registries"]["basic"]
    creds = {"username": basic["username"], "password": basic["password"]}
    repository, _ = pushed(registry="basic", credentials=creds)
    answer = pull(client, headers, reference=repository)
    assert answer.status_code == 403
    assert answer.get_json()["code"] == "REGISTRY_AUTH_FAILED"


def test_basic_registry_refused_credentials_are_403(client, headers, pushed, harness):
    basic = harness["registries"]["basic"]
    creds = {"username": basic["username"], "password": basic["password"]}
    repository, _ = pushed(registry="basic", credentials=creds)
    wrong = encode_registry_auth({"username": basic["username"], "password": "wrong-password"})
    answer = pull(client, headers, extra={"X-Registry-Auth": wrong}, reference=repository)
    assert answer.status_code == 403
    problem = answer.get_json()
    assert problem["code"] == "REGISTRY_AUTH_FAILED"
    assert "wrong-password" not in json.dumps(problem)


def test_basic_registry_with_credentials_pulls_and_never_logs_them(
    client, headers, pushed, harness, docker_client, caplog
):
    basic = harness["registries"]["basic"]
    creds = {"username": basic["username"], "password": basic["password"]}
    repository, digest = pushed(registry="basic", credentials=creds)
    value = encode_registry_auth({**creds, "serveraddress": basic["address"]})
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep(level=logging.DEBUG)
    berth = logging.getLogger("berth")
    berth.addHandler(keep)
    caplog.set_level(logging.DEBUG)
    try:
        answer = pull(client, headers, extra={"X-Registry-Auth": value}, reference=repository)
    finally:
        berth.removeHandler(keep)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["digest"] == digest
    logged = "\n".join(
        r.getMessage() + json.dumps(getattr(r, "berth", {}), default=str)
        for r in records + caplog.records
    )
    assert basic["password"] not in logged
    assert value not in logged
    forget(docker_client, f"{repository}:latest")


def test_stored_credentials_are_used_when_the_header_is_absent(
    config, headers, pushed, harness, docker_client, tmp_path
):
    basic = harness["registries"]["basic"]
    creds = {"username": basic["username"], "password": basic["password"]}
    repository, digest = pushed(registry="basic", credentials=creds)
    store = tmp_path / "auth.json"
    store.write_text(json.dumps({"auths": {basic["address"]: creds}}))
    store.chmod(0o600)
    app = create_app({**config, "BERTH_REGISTRY_AUTH_FILE": str(store)})
    try:
        client = app.test_client()
        answer = pull(client, headers, reference=repository)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["digest"] == digest
        # The request's own credentials win over the stored ones, even when they are wrong.
        wrong = encode_registry_auth({"username": basic["username"], "password": "nope"})
        refused = pull(client, headers, extra={"X-Registry-Auth": wrong}, reference=repository)
        assert refused.status_code == 403
    finally:
        services(app).engines.close()
        forget(docker_client, f"{repository}:latest")


def test_token_registry_pull_with_credentials(client, headers, harness, docker_client, pushed):
    issuer = token_issuer(harness)
    token = harness["registries"]["token"]
    user, password = next(iter(issuer.users.items()))
    creds = {"username": user, "password": password}
    repository, digest = pushed(registry="token", credentials=creds)
    assert pull(client, headers, reference=repository).status_code == 403
    value = encode_registry_auth({**creds, "serveraddress": token["address"]})
    answer = pull(client, headers, extra={"X-Registry-Auth": value}, reference=repository)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["digest"] == digest
    forget(docker_client, f"{repository}:latest")


def test_invalid_registry_auth_header_is_400_without_echo(client, headers):
    secret = "not-base64-secret!!"
    answer = pull(client, headers, extra={"X-Registry-Auth": secret}, reference="a/b:1")
    assert answer.status_code == 400
    problem = answer.get_json()
    assert problem["code"] == "INVALID_REGISTRY_AUTH"
    assert secret not in json.dumps(problem)


def test_ndjson_progress_ends_with_exactly_one_result_line(client, headers, pushed, docker_client):
    repository, digest = pushed(tag="v2")
    answer = pull(client, headers, extra=NDJSON, reference=f"{repository}:v2")
    assert answer.status_code == 200
    assert answer.mimetype == "application/x-ndjson"
    lines = ndjson_lines(answer)
    finals = [line for line in lines if "result" in line or "error" in line]
    assert finals == [lines[-1]]
    assert lines[-1]["result"]["reference"] == f"{repository}:v2"
    assert lines[-1]["result"]["digest"] == digest
    assert len(lines) >= 2
    for line in lines[:-1]:
        assert set(line) == {"status", "layer", "current", "total"}
    forget(docker_client, f"{repository}:v2")


# --- failures inside the engine's 200 stream ------------------------------------------------


def _layer() -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"payload\n"
        info = tarfile.TarInfo("payload")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    return gzip.compress(raw.getvalue(), mtime=0), diff_id


class CorruptRegistry:
    """A registry whose one image has a layer that does not match its digest."""

    def __init__(self) -> None:
        layer, diff_id = _layer()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created_by": "fake"}],
            }
        ).encode()
        self.blobs = {
            "sha256:" + hashlib.sha256(config).hexdigest(): config,
            "sha256:" + hashlib.sha256(layer).hexdigest(): b"X" * len(layer),  # corrupt
        }
        config_digest, layer_digest = list(self.blobs)
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(config),
                    "digest": config_digest,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(layer),
                        "digest": layer_digest,
                    }
                ],
            }
        ).encode()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", content_type="application/json", digest=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                if digest:
                    self.send_header("Docker-Content-Digest", digest)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                path = self.path.split("?")[0]
                if path == "/v2/":
                    return self._send(200, b"{}")
                if "/manifests/" in path:
                    digest = "sha256:" + hashlib.sha256(registry.manifest).hexdigest()
                    return self._send(
                        200,
                        registry.manifest,
                        "application/vnd.docker.distribution.manifest.v2+json",
                        digest,
                    )
                if "/blobs/" in path:
                    digest = path.rsplit("/", 1)[1]
                    if digest in registry.blobs:
                        return self._send(200, registry.blobs[digest], "application/octet-stream")
                self._send(404, b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}')

            do_HEAD = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def corrupt_registry():
    registry = CorruptRegistry()
    yield registry
    registry.stop()


@pytest.fixture
def corrupt_client(app_allowing, corrupt_registry):
    """A client whose outbound policy also allows the corrupt registry."""
    return app_allowing(corrupt_registry.address).test_client()


def test_failure_inside_the_engine_stream_is_502_not_200(corrupt_client, headers, corrupt_registry):
    answer = pull(corrupt_client, headers, reference=f"{corrupt_registry.address}/team/broken:1")
    assert answer.status_code == 502
    problem = answer.get_json()
    assert problem["code"] == "REGISTRY_ERROR"
    assert "verification failed" in problem["detail"]


def test_failure_inside_the_stream_ends_ndjson_with_one_error_line(
    corrupt_client, headers, corrupt_registry
):
    answer = pull(
        corrupt_client, headers, extra=NDJSON, reference=f"{corrupt_registry.address}/team/broken:1"
    )
    assert answer.status_code == 200  # the stream had begun; its last line says what happened
    lines = ndjson_lines(answer)
    finals = [line for line in lines if "result" in line or "error" in line]
    assert finals == [lines[-1]]
    assert lines[-1]["error"]["code"] == "REGISTRY_ERROR"
    assert lines[-1]["error"]["status"] == 502
    assert "verification failed" in lines[-1]["error"]["detail"]


# --- input and scope --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reference": "UPPER/case"},
        {"reference": "sha256:" + "a" * 64},
        {"reference": "a/b:1", "platform": "Linux AMD64"},
        {"reference": "a/b:1", "extra": True},
    ],
)
def test_invalid_pull_body_is_400(client, headers, body):
    answer = client.post("/v1/images/pull", json=body, headers=headers("write"))
    assert answer.status_code == 400


@pytest.mark.parametrize("platform", ["nosuchthing", "linux/zz80", "Linux/AMD64", "linux/arm/v9"])
def test_unknown_platform_is_400(client, headers, platform):
    answer = pull(client, headers, reference="127.0.0.1:5000/a/b:1", platform=platform)
    assert answer.status_code == 400
    assert "platform" in answer.get_json()["errors"]


def test_image_for_another_platform_is_not_a_success(
    client, headers, pushed, docker_client, base_image
):
    local = docker_client.images.get(base_image).attrs
    other = "arm64" if local["Architecture"] != "arm64" else "amd64"
    repository, _ = pushed(tag="v1")
    answer = pull(client, headers, reference=f"{repository}:v1", platform=f"linux/{other}")
    assert answer.status_code == 404
    problem = answer.get_json()
    assert problem["code"] == "PLATFORM_NOT_AVAILABLE"
    assert problem["found"].startswith(f"{local['Os']}/{local['Architecture']}")
    same = pull(
        client,
        headers,
        reference=f"{repository}:v1",
        platform=f"{local['Os']}/{local['Architecture']}",
    )
    assert same.status_code == 200, same.get_json()
    forget(docker_client, f"{repository}:v1")


def test_pull_needs_write_scope(client, headers):
    assert pull(client, headers, scope="read", reference="a/b:1").status_code == 403
    assert pull(client, headers, scope="delete", reference="a/b:1").status_code == 403
