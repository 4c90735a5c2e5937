"""Faults: an engine that stops, comes back, or hangs; Berth answers in bounded time."""

import socket
import threading
import time

import pytest

from app import create_app
from tests.support.harness import harness_module


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
