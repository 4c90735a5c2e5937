"""Berth served by a real gunicorn process, as `make run` starts it."""

import json
import os
import stat
import subprocess
from pathlib import Path

import requests

from scripts.berth_server import gunicorn_command
from tests.support.gunicorn import LISTEN, gunicorn_server, tcp_sockets, wait_for
from tests.support.harness import ROOT
from tests.support.tokens import TOKENS, token_entries


def test_gunicorn_serves_the_api_with_tokens(harness, tmp_path, images):
    image_id, ref = images.image("true")
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, tokens=token_entries()) as server:
        auth = {"Authorization": f"Bearer {TOKENS['read']}"}
        listed = requests.get(f"{server.url}/v1/images", headers=auth, timeout=10)
        assert listed.status_code == 200
        assert image_id in {i["id"] for i in listed.json()["images"]}
        inspected = requests.get(f"{server.url}/v1/images/{ref}", headers=auth, timeout=10)
        assert inspected.json()["id"] == image_id
        assert requests.get(f"{server.url}/v1/images", timeout=10).status_code == 401
        assert requests.get(f"{server.url}/openapi.json", timeout=10).json()["openapi"]
        assert "Docker engine 20." in server.output or "Docker engine" in server.output

        def listed_is_logged() -> bool:
            access = [
                json.loads(line)
                for line in server.output.splitlines()
                if line.startswith("{") and '"berth.access"' in line
            ]
            return any(
                a["path"] == "/v1/images" and a["status"] == 200 and a["token"] == "read-token"
                for a in access
            )

        assert wait_for(listed_is_logged, 5)
        assert TOKENS["read"] not in server.output
        # No control socket from which workers could be managed (gunicorn 27 opens one unless
        # told not to, at one path shared by every instance of the user).
        assert "Control socket" not in server.output


def test_files_touched_on_every_request_are_in_memory_and_removed_at_exit(harness, tmp_path):
    # The worker heartbeat and the metrics' mapped files are written on every request; on a disk
    # filesystem they would wait behind its journal while the engine writes an archive there.
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, tokens=token_entries()) as server:
        auth = {"Authorization": f"Bearer {TOKENS['read']}"}
        assert requests.get(f"{server.url}/v1/images", headers=auth, timeout=10).ok
        metrics_dirs = set()
        for pid in server.worker_pids():
            fds = Path(f"/proc/{pid}/fd")
            targets = [os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()]
            heartbeat = [t for t in targets if "/wgunicorn-" in t]
            assert len(heartbeat) == 1 and heartbeat[0].startswith("/dev/shm/"), heartbeat
            maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
            mapped = {line.split()[-1] for line in maps if "berth-metrics-" in line}
            assert mapped and all(path.startswith("/dev/shm/berth-metrics-") for path in mapped)
            metrics_dirs |= {os.path.dirname(path) for path in mapped}
        assert len(metrics_dirs) == 1
    assert not os.path.exists(metrics_dirs.pop())


def test_a_metrics_directory_given_by_the_operator_is_used_and_kept(harness, tmp_path):
    given = tmp_path / "metrics"
    given.mkdir()
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_DATA_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(given),
    }
    with gunicorn_server(env, tokens=token_entries()) as server:
        auth = {"Authorization": f"Bearer {TOKENS['read']}"}
        assert requests.get(f"{server.url}/v1/images", headers=auth, timeout=10).ok
        assert any(given.iterdir())
    assert given.is_dir()


def test_first_start_without_tokens_creates_an_admin_token(harness, tmp_path):
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env) as server:
        secret_file = tmp_path / "admin.token"
        token = secret_file.read_text().strip()
        assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
        # Not a terminal (as under docker logs or journald): where the token is, never the token.
        assert token not in server.output and "curl -H" in server.output
        assert f"Created an admin token; it is stored in {secret_file}" in server.output
        stored = json.loads((tmp_path / "tokens.json").read_text())
        assert token not in json.dumps(stored) and stored[0]["scopes"] == ["admin"]
        ok = requests.get(
            f"{server.url}/v1/images", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert ok.status_code == 200
    with gunicorn_server(env) as again:  # the second start reuses it and prints no secret
        assert token not in again.output
        assert "Using the admin token; it is stored in" in again.output


def test_start_without_an_engine_says_so_in_one_sentence(tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/absent.sock", "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, tokens=token_entries()) as server:
        assert f"No Docker engine answers at unix://{tmp_path}/absent.sock" in server.output
        assert "set DOCKER_HOST" in server.output
        ready = requests.get(f"{server.url}/v1/ready", timeout=10)
        assert ready.status_code == 503


def listening_sockets(pid: int, port: int) -> set[int]:
    return tcp_sockets(pid, port, LISTEN)


def test_each_worker_listens_on_its_own_socket_and_a_second_server_is_refused(harness, tmp_path):
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, workers=2, tokens=token_entries()) as server:
        port = int(server.url.rsplit(":", 1)[1])

        def both_listen() -> bool:  # the server answers once the first worker has booted
            pids = server.worker_pids()
            return len(pids) == 2 and all(listening_sockets(pid, port) for pid in pids)

        assert wait_for(both_listen)
        workers = server.worker_pids()
        sockets = [listening_sockets(pid, port) for pid in workers]
        # One socket each (SO_REUSEPORT: the kernel spreads connections over them); on a
        # shared listener both workers would hold the master's one socket.
        assert len(workers) == 2 and all(len(held) == 1 for held in sockets), sockets
        assert sockets[0] != sockets[1]
        assert not listening_sockets(server.process.pid, port)

        # The same address again: refused before any worker starts, and the first serves on.
        metrics_dirs = set(Path("/dev/shm").glob("berth-metrics-*"))
        second = subprocess.run(
            gunicorn_command(),
            cwd=ROOT,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "DOCKER_HOST": harness["docker_host"],
                "BERTH_DATA_DIR": str(tmp_path),
                "BERTH_TOKENS": json.dumps(token_entries()),
                "BERTH_BIND": f"127.0.0.1:{port}",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert f"Berth cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr
        assert "Booting worker" not in second.stderr
        assert set(Path("/dev/shm").glob("berth-metrics-*")) == metrics_dirs  # none left behind
        assert requests.get(f"{server.url}/v1/health", timeout=10).status_code == 200
        assert [listening_sockets(pid, port) for pid in server.worker_pids()] == sockets
