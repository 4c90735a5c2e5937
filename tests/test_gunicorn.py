"""Berth served by a real gunicorn process, as `make run` starts it."""

import json
import os
import stat

import requests

from tests.conftest import TOKENS, _token_entries
from tests.support.gunicorn import gunicorn_server


def test_gunicorn_serves_the_api_with_tokens(harness, tmp_path, images):
    image_id, ref = images.image("true")
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, tokens=_token_entries()) as server:
        auth = {"Authorization": f"Bearer {TOKENS['read']}"}
        listed = requests.get(f"{server.url}/v1/images", headers=auth, timeout=10)
        assert listed.status_code == 200
        assert image_id in {i["id"] for i in listed.json()["images"]}
        inspected = requests.get(f"{server.url}/v1/images/{ref}", headers=auth, timeout=10)
        assert inspected.json()["id"] == image_id
        assert requests.get(f"{server.url}/v1/images", timeout=10).status_code == 401
        assert requests.get(f"{server.url}/openapi.json", timeout=10).json()["openapi"]
        assert "Docker engine 20." in server.output or "Docker engine" in server.output
        access = [
            json.loads(line)
            for line in server.output.splitlines()
            if line.startswith("{") and '"berth.access"' in line
        ]
        assert any(
            a["path"] == "/v1/images" and a["status"] == 200 and a["token"] == "read-token"
            for a in access
        )
        assert TOKENS["read"] not in server.output
        # No control socket from which workers could be managed (gunicorn 27 opens one unless
        # told not to, at one path shared by every instance of the user).
        assert "Control socket" not in server.output


def test_first_start_without_tokens_creates_an_admin_token(harness, tmp_path):
    env = {"DOCKER_HOST": harness["docker_host"], "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env) as server:
        secret_file = tmp_path / "admin.token"
        token = secret_file.read_text().strip()
        assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
        assert token in server.output and "curl -H" in server.output
        stored = json.loads((tmp_path / "tokens.json").read_text())
        assert token not in json.dumps(stored) and stored[0]["scopes"] == ["admin"]
        ok = requests.get(
            f"{server.url}/v1/images", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert ok.status_code == 200
    with gunicorn_server(env) as again:  # the second start reuses it and prints no secret
        assert token not in again.output and "Using the admin token stored in" in again.output


def test_start_without_an_engine_says_so_in_one_sentence(tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/absent.sock", "BERTH_DATA_DIR": str(tmp_path)}
    with gunicorn_server(env, tokens=_token_entries()) as server:
        assert f"No Docker engine answers at unix://{tmp_path}/absent.sock" in server.output
        assert "set DOCKER_HOST" in server.output
        ready = requests.get(f"{server.url}/v1/ready", timeout=10)
        assert ready.status_code == 503
