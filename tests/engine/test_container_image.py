"""The default deployment: the Dockerfile, built without Docker Hub and run as a container.

The base is made from Debian packages (scripts/base-image.sh) and the wheels are fetched into
wheels/ beforehand, so the build itself runs with no network. The image is built in the
harness engine and run there with the host's network on a free loopback port, the engine's
socket mounted as an operator would mount it. The image stays for the next run; its base is
only rebuilt when the engine lacks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from scripts.healthcheck import health_url
from tests.support.gunicorn import free_port
from tests.support.harness import ROOT
from tests.support.needs import need

pytestmark = pytest.mark.slow

BASE_TAG = "berth-base:bookworm"
IMAGE_TAG = "berth-test/berth:latest"
SINK_PROXY = "http://127.0.0.1:9"  # what the suite sets so that tests reach loopback only
SLOW_CLIENTS = 50
TRICKLE_SECONDS = 2.0  # one header line per connection this often
SLOW_TEST_SECONDS = 12.0  # longer than the header deadline, so every slow client is dropped


def tooling_env(**extra: str) -> dict[str, str]:
    """The environment for apt and pip: without the suite's sink proxy (they fetch packages)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.lower() in ("http_proxy", "https_proxy", "all_proxy") and v == SINK_PROXY)
    }
    env.update(extra)
    return env


def docker(harness, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The harness's docker CLI against the harness engine (never the host's default one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env["DOCKER_CONFIG"] = harness["docker_config"]
    return subprocess.run(
        [harness["docker_cli"], "-H", harness["docker_host"], *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _base_script(harness, timeout: float) -> subprocess.CompletedProcess:
    """scripts/base-image.sh run against the harness engine."""
    return subprocess.run(
        [str(ROOT / "scripts" / "base-image.sh"), BASE_TAG],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=tooling_env(
            DOCKER=harness["docker_cli"],
            DOCKER_HOST=harness["docker_host"],
            DOCKER_CONFIG=harness["docker_config"],
        ),
    )


@pytest.fixture(scope="module")
def berth_image(harness) -> str:
    """The Dockerfile built from the local Debian base with wheels/, offline."""
    base = _base_script(harness, timeout=900)
    need(base.returncode == 0, f"scripts/base-image.sh failed:\n{tail(base.stderr)}")
    wheels = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--find-links", "wheels", "-w", "wheels"]
        + ["-r", "requirements.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=tooling_env(),
    )
    need(wheels.returncode == 0, f"pip could not fetch the wheels:\n{tail(wheels.stderr)}")
    before = docker(harness, "image", "inspect", "--format", "{{.Id}}", IMAGE_TAG).stdout.strip()
    build = docker(
        harness,
        "build",
        "--network",
        "none",
        "--force-rm",
        "--build-arg",
        f"BASE={BASE_TAG}",
        "-t",
        IMAGE_TAG,
        str(ROOT),
        timeout=900,
    )
    assert build.returncode == 0, f"docker build failed:\n{tail(build.stdout + build.stderr)}"
    after = docker(harness, "image", "inspect", "--format", "{{.Id}}", IMAGE_TAG).stdout.strip()
    if before and before != after:  # the image a changed tree replaced: nothing uses it now
        docker(harness, "rmi", before)
    return IMAGE_TAG


class Container:
    def __init__(self, harness, name: str, url: str) -> None:
        self.harness = harness
        self.name = name
        self.url = url

    def logs(self) -> str:
        result = docker(self.harness, "logs", self.name)
        return result.stdout + result.stderr

    def inspect(self) -> dict:
        result = docker(self.harness, "inspect", self.name)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)[0]


@pytest.fixture(scope="module")
def read_token() -> str:
    return f"test-image-{secrets.token_hex(16)}"


@pytest.fixture(scope="module")
def container(harness, berth_image, read_token, tmp_path_factory) -> Iterator[Container]:
    """The image started as the README says, on a free loopback port of the host's network."""
    tokens = tmp_path_factory.mktemp("image") / "tokens.json"
    digest = hashlib.sha256(read_token.encode()).hexdigest()
    tokens.write_text(json.dumps([{"name": "image-read", "sha256": digest, "scopes": ["read"]}]))
    tokens.chmod(0o644)
    socket_path = harness["docker_host"].removeprefix("unix://")
    port = free_port()
    name = f"berth-image-test-{secrets.token_hex(4)}"
    run = docker(
        harness,
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        f"BERTH_BIND=127.0.0.1:{port}",
        "-v",
        f"{socket_path}:/var/run/docker.sock",
        "--group-add",
        str(os.stat(socket_path).st_gid),
        "-v",
        f"{tokens}:/etc/berth/tokens.json:ro",
        "-e",
        "BERTH_TOKENS_FILE=/etc/berth/tokens.json",
        berth_image,
    )
    assert run.returncode == 0, f"docker run failed: {run.stderr}"
    started = Container(harness, name, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while not _answers(started.url):
            state = started.inspect()["State"]
            assert state["Running"], f"the container exited:\n{tail(started.logs())}"
            assert time.monotonic() < deadline, f"no answer in 60 s:\n{tail(started.logs())}"
            time.sleep(0.5)
        yield started
    finally:
        docker(harness, "rm", "-f", name)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/v1/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_image_runs_every_process_as_a_non_root_user(harness, container):
    assert container.inspect()["Config"]["User"] == "berth"
    top = docker(harness, "top", container.name, "-o", "pid,uid,args")
    assert top.returncode == 0, top.stderr
    rows = [line.split(None, 2) for line in top.stdout.strip().splitlines()[1:]]
    gunicorns = [row for row in rows if "gunicorn" in row[2]]
    assert len(gunicorns) >= 3, top.stdout  # the master and its two workers
    assert all(int(uid) != 0 for _, uid, _ in rows), top.stdout
    # The data directory (job records, audit log, spool) is the user's to write.
    writable = docker(harness, "exec", container.name, "sh", "-c", 'test -w "$BERTH_DATA_DIR"')
    assert writable.returncode == 0, writable.stderr


def test_the_image_answers_health_and_its_healthcheck_passes(harness, container):
    health = requests.get(f"{container.url}/v1/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # The image's own HEALTHCHECK command, run as the engine runs it: it follows BERTH_BIND
    # (here a loopback port, not the image's default 8080) and fails where nothing answers.
    check = container.inspect()["Config"]["Healthcheck"]["Test"]
    assert check[0] == "CMD", check
    ran = docker(harness, "exec", container.name, *check[1:])
    assert ran.returncode == 0, ran.stdout + ran.stderr
    elsewhere = f"BERTH_BIND=0.0.0.0:{free_port()}"
    failed = docker(harness, "exec", "-e", elsewhere, container.name, *check[1:])
    assert failed.returncode == 1, failed.stdout + failed.stderr


@pytest.mark.parametrize(
    ("bind", "tls", "url"),
    [
        ("0.0.0.0:8080", False, "http://127.0.0.1:8080/v1/health"),
        ("127.0.0.1:9000", True, "https://127.0.0.1:9000/v1/health"),
        ("[::]:8080", False, "http://[::1]:8080/v1/health"),
        ("[::1]:8443", True, "https://[::1]:8443/v1/health"),
        ("10.1.2.3:80", False, "http://10.1.2.3:80/v1/health"),
        (":8080", False, "http://127.0.0.1:8080/v1/health"),
    ],
)
def test_the_healthcheck_asks_where_gunicorn_listens(bind, tls, url):
    assert health_url(bind, tls) == url


def test_the_image_refuses_without_a_token_and_serves_with_one(container, base_image, read_token):
    refused = requests.get(f"{container.url}/v1/images", timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    listed = requests.get(
        f"{container.url}/v1/images",
        headers={"Authorization": f"Bearer {read_token}"},
        timeout=30,
    )
    assert listed.status_code == 200, listed.text
    tags = {tag for image in listed.json()["images"] for tag in image["repo_tags"]}
    assert base_image in tags  # through the mounted socket, as the non-root user
    assert read_token not in container.logs()


def test_slow_clients_are_dropped_and_health_keeps_answering(container):
    """50 connections sending one header line every 2 s hold no thread of the container's server.

    Needs the header-read deadline of the server's worker (BERTH_HEADER_TIMEOUT).
    """
    host, port = container.url.removeprefix("http://").rsplit(":", 1)
    slow = []
    for _ in range(SLOW_CLIENTS):
        conn = socket.create_connection((host, int(port)), timeout=5)
        conn.sendall(b"GET /v1/health HTTP/1.1\r\nHost: berth\r\n")
        slow.append(conn)
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + SLOW_TEST_SECONDS
        line = 0
        while time.monotonic() < deadline:
            line += 1
            for conn in slow:
                try:
                    conn.sendall(f"X-Slow-{line}: {line}\r\n".encode())
                except OSError:
                    pass  # already dropped by the server
            next_line = time.monotonic() + TRICKLE_SECONDS
            while time.monotonic() < next_line:
                latencies.append(_health_latency(container.url))
                assert latencies[-1] < 1.0, f"/v1/health took {latencies[-1]:.2f} s"
                time.sleep(0.25)
        still_open = _still_open(slow, within=5.0)
        assert not still_open, f"{still_open} of {SLOW_CLIENTS} slow clients were not dropped"
    finally:
        for conn in slow:
            conn.close()
    assert len(latencies) >= 20


def _health_latency(url: str) -> float:
    """Seconds /v1/health took on a new connection (infinite when it failed or took over 5 s)."""
    start = time.monotonic()
    try:
        ok = requests.get(f"{url}/v1/health", timeout=5).status_code == 200
    except requests.RequestException:
        ok = False
    return time.monotonic() - start if ok else float("inf")


def _still_open(conns: list[socket.socket], within: float) -> int:
    """How many of ``conns`` the server has not closed (a 408 before the close is fine)."""
    deadline = time.monotonic() + within
    still = 0
    for conn in conns:
        try:
            while True:
                conn.settimeout(max(deadline - time.monotonic(), 0.01))
                if not conn.recv(4096):
                    break
        except ConnectionResetError:
            pass
        except TimeoutError:
            still += 1
    return still


def test_the_base_image_script_is_a_no_op_when_the_tag_exists(harness, berth_image):
    again = _base_script(harness, timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"{BASE_TAG} exists" in again.stderr
