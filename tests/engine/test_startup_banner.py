"""The start-up banner tells the truth, and a bad configuration is refused once, before workers.

Real gunicorn processes (``gunicorn -c gunicorn.conf.py wsgi:app``), as an operator starts them.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests

from scripts.berth_server import free_port, gunicorn_command, start_gunicorn
from tests.support.harness import ROOT
from tests.support.tokens import TOKENS, token_entries


def _env(tmp_path, **more: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_TOKENS": json.dumps(token_entries()),
        **more,
    }


def _refused(tmp_path, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        gunicorn_command(),
        cwd=ROOT,
        env=_env(tmp_path, BERTH_BIND=f"127.0.0.1:{free_port()}", **more),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_banner_names_the_address_given_with_b_and_every_engine(harness, tmp_path):
    port = free_port()
    other = free_port({port})
    env = _env(
        tmp_path,
        BERTH_BIND=f"127.0.0.1:{other}",  # what -b overrides
        BERTH_ENGINES=json.dumps(
            {"main": harness["docker_host"], "gone": f"unix://{tmp_path}/absent.sock"}
        ),
    )
    del env["PATH"]  # start_gunicorn gives its own
    log_path = tmp_path / "gunicorn.log"
    server = start_gunicorn(env, log_path, port=port, args=("-b", f"127.0.0.1:{port}"))
    try:
        out = server.output
        assert f"Berth listens on http://127.0.0.1:{port} " in out
        assert str(other) not in out
        assert "Engine 'main': Docker engine " in out and harness["docker_host"] in out
        assert f"WARNING: engine 'gone' does not answer at unix://{tmp_path}/absent.sock" in out
        listed = requests.get(
            f"{server.url}/v1/engines",
            headers={"Authorization": f"Bearer {TOKENS['read']}"},
            timeout=10,
        )
        assert listed.status_code == 200
    finally:
        server.stop()


def test_banner_follows_gunicorn_cmd_args(tmp_path):
    port = free_port()
    env = {
        "BERTH_DATA_DIR": str(tmp_path),
        "BERTH_TOKENS": json.dumps(token_entries()),
        "DOCKER_HOST": f"unix://{tmp_path}/absent.sock",
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
    }
    server = start_gunicorn(env, tmp_path / "gunicorn.log", port=port)  # BERTH_BIND differs
    try:
        assert f"Berth listens on http://127.0.0.1:{port} " in server.output
        assert f"No Docker engine answers at unix://{tmp_path}/absent.sock" in server.output
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("BERTH_TOKENS", '[{"name": "ci", "token": "short", "scopes": ["read"]}]', "'token'"),
        ("BERTH_TOKENS", "not json", "BERTH_TOKENS"),
        ("BERTH_MAX_TRANSFERS", "many", "BERTH_MAX_TRANSFERS"),
        ("BERTH_ENGINES", '{"Bad Name": "unix:///x.sock"}', "BERTH_ENGINES"),
        ("BERTH_AUTH", "maybe", "BERTH_AUTH"),
    ],
)
def test_a_bad_configuration_is_refused_in_one_line_before_any_worker(
    tmp_path, setting, value, said
):
    run = _refused(tmp_path, **{setting: value})
    assert run.returncode != 0
    output = (run.stdout + run.stderr).strip()
    refusals = [line for line in output.splitlines() if "configuration refused" in line]
    assert len(refusals) == 1 and said in refusals[0], output
    assert "Traceback" not in output and "Booting worker" not in output, output
