"""Faults: an engine that stops, comes back, or hangs; Berth answers in bounded time."""

import io
import socket
import tarfile
import threading
import time

import docker
import pytest
import requests
import urllib3.exceptions

from app import create_app
from tests.support.gunicorn import gunicorn_server
from tests.support.harness import harness_module
from tests.support.images import blob_image, unique
from tests.support.stall_proxy import StallingProxy
from tests.support.tokens import TOKENS, token_entries


@pytest.fixture
def engine_control(harness):
    """Stop and restart the harness engine; always restarted, even when the test fails."""
    module = harness_module()
    state = module.load_state(harness["dir"])
    yield module, state
    module.start_engine(state)
    module.save_state(state)


def test_engine_stopped_then_back_is_503_then_served_again(client, headers, engine_control):
    module, state = engine_control
    assert client.get("/v1/images", headers=headers("read")).status_code == 200
    module.stop_engine(state)
    for path in ("/v1/images", "/v1/containers", "/v1/images/berth-test/busybox:latest"):
        started = time.monotonic()
        response = client.get(path, headers=headers("read"))
        assert response.status_code == 503, path
        assert response.get_json()["code"] == "ENGINE_UNAVAILABLE"
        assert time.monotonic() - started < 5
    assert client.get("/v1/ready").status_code == 503
    module.start_engine(state)
    module.save_state(state)
    assert client.get("/v1/ready").status_code == 200
    assert client.get("/v1/images", headers=headers("read")).status_code == 200


class SilentEngine:
    """A TCP listener that accepts connections and never answers: a hung engine."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_hung_engine_times_out_as_503_within_the_configured_timeout(config, headers):
    silent = SilentEngine()
    try:
        app = create_app(
            {**config, "DOCKER_HOST": f"tcp://127.0.0.1:{silent.port}", "BERTH_ENGINE_TIMEOUT": 1.0}
        )
        client = app.test_client()
        started = time.monotonic()
        response = client.get("/v1/images", headers=headers("read"))
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.get_json()["code"] == "ENGINE_UNAVAILABLE"
        assert elapsed < 5, elapsed
        assert client.get("/v1/health").status_code == 200
    finally:
        silent.close()


@pytest.fixture
def open_registry_control(harness):
    """Stop the open registry in a test; always restarted afterwards."""
    module = harness_module()
    state = module.load_state(harness["dir"])
    yield module, state
    module.start_registry(state, "open")
    module.save_state(state)


def _push_dies_midway(app_allowing, headers, images, registry_control, prefer_async):
    """Start a push through a stalling proxy, then stop the registry under it.

    The push goes through a client whose outbound policy allows the proxy; it is returned."""
    module, state = registry_control
    image_id, ref = images.image("dd if=/dev/urandom of=/blob bs=1M count=8 2>/dev/null")
    host, port = state["registries"]["open"]["address"].split(":")
    outcome = {}
    with StallingProxy((host, int(port))) as proxy:
        target = f"127.0.0.1:{proxy.port}/{unique('midway')}:1"
        extra = {"Prefer": "respond-async"} if prefer_async else {}
        client = app_allowing(f"127.0.0.1:{proxy.port}").test_client()

        def push():
            outcome["response"] = client.post(
                f"/v1/images/{ref}/push",
                json={"target": target},
                headers={**headers("push"), **extra},
            )

        worker = threading.Thread(target=push)
        worker.start()
        if not prefer_async:
            proxy.wait_stalled(timeout=60)
        else:
            worker.join(timeout=30)
            proxy.wait_stalled(timeout=60)
        module.stop_registry(state, "open")
        proxy.stop()  # the registry is gone: every connection to it is cut
        worker.join(timeout=240)
    assert not worker.is_alive(), "the push did not end after the registry went away"
    return image_id, ref, target, outcome["response"], client


def test_registry_stopped_during_a_push_is_502_and_nothing_local_is_lost(
    app_allowing, headers, images, open_registry_control, docker_client
):
    image_id, ref, target, response, _ = _push_dies_midway(
        app_allowing, headers, images, open_registry_control, prefer_async=False
    )
    assert response.status_code == 502, response.get_data()[:300]
    assert response.get_json()["code"] == "REGISTRY_UNREACHABLE"
    assert docker_client.images.get(ref).id == image_id
    with pytest.raises(docker.errors.ImageNotFound):  # the target name was lent, not left
        docker_client.images.get(target)


def test_registry_stopped_during_an_async_push_fails_the_job(
    app_allowing, headers, images, open_registry_control, docker_client
):
    image_id, ref, _, accepted, client = _push_dies_midway(
        app_allowing, headers, images, open_registry_control, prefer_async=True
    )
    assert accepted.status_code == 202
    location = accepted.headers["Location"]
    deadline = time.monotonic() + 240
    while True:
        job = client.get(location, headers=headers("push")).get_json()
        if job["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert job["state"] == "failed"
    assert job["error"]["code"] == "REGISTRY_UNREACHABLE"
    assert docker_client.images.get(ref).id == image_id


GIB = 1024**3


@pytest.fixture
def gib_image(docker_client, base_image):
    """An image whose one layer holds 1 GiB (zeros: quick to write; a save stays 1 GiB)."""
    with blob_image(docker_client, base_image, 1024, "/dev/zero", "berth-gib") as ref:
        yield ref


def test_engine_killed_during_a_1_gib_download_cuts_it_and_the_worker_serves_on(
    harness, engine_control, gib_image, base_image, tmp_path
):
    module, state = engine_control
    read = {"Authorization": f"Bearer {TOKENS['read']}"}
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    # One worker with one thread: if the cut download held it, nothing else could be served.
    with gunicorn_server(env, workers=1, threads=1, tokens=token_entries()) as server:
        download = requests.get(
            f"{server.url}/v1/images/{gib_image}/archive", headers=read, stream=True, timeout=300
        )
        assert download.status_code == 200
        assert download.headers.get("Transfer-Encoding") == "chunked"
        received = len(download.raw.read(16 * 1024 * 1024))
        assert received == 16 * 1024 * 1024
        module.kill_engine(state)  # SIGKILL: the engine's end of the stream just vanishes
        with pytest.raises(urllib3.exceptions.ProtocolError):  # the chunked body breaks off
            while chunk := download.raw.read(1024 * 1024):
                received += len(chunk)
        assert received < GIB  # cut, never ended as if the archive were complete
        deadline = time.monotonic() + 10
        while "engine stream failed; response cut" not in server.output:
            assert time.monotonic() < deadline, "the cut was not logged"
            time.sleep(0.1)

        # The worker is free at once: without the engine it answers 503, not a hang...
        down = requests.get(f"{server.url}/v1/images/{base_image}", headers=read, timeout=30)
        assert down.status_code == 503 and down.json()["code"] == "ENGINE_UNAVAILABLE"
        # ...and with the engine back it serves downloads again, without a restart.
        module.start_engine(state)
        module.save_state(state)
        again = requests.get(
            f"{server.url}/v1/images/{base_image}/archive", headers=read, timeout=60
        )
        assert again.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(again.content)) as archive:
            assert "manifest.json" in archive.getnames()
