"""Tokens follow BERTH_TOKENS_FILE without a restart; the bootstrap token stays off the logs."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import time

import pytest

from app import create_app
from app.config import DEFAULTS
from app.http.accessors import services
from app.server.startup import announce

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"
CAROL = "carol-token-0123456789abcdef"


def _entry(name, token):
    return {"name": name, "token": token, "scopes": ["read"]}


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([_entry("alice", ALICE), _entry("bob", BOB)]))
    return path


@pytest.fixture
def file_client(tokens_file, tmp_path):
    app = create_app(
        {
            "DOCKER_HOST": f"unix://{tmp_path}/missing.sock",
            "BERTH_TOKENS_FILE": str(tokens_file),
            "BERTH_DATA_DIR": str(tmp_path / "data"),
        }
    )
    yield app.test_client()
    services(app).engines.close()


def _status(client, token):
    return client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code


def _rewrite(path, entries):
    """Replace the file as an editor or a deployment tool does: write aside, then rename."""
    aside = path.with_name(path.name + ".new")
    aside.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    os.replace(aside, path)


def _within(seconds, check):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def test_a_revoked_token_is_refused_without_a_restart(file_client, tokens_file):
    assert _status(file_client, ALICE) == 200 and _status(file_client, BOB) == 200
    _rewrite(tokens_file, [_entry("alice", ALICE)])
    _within(2.5, lambda: _status(file_client, BOB) == 401)
    assert _status(file_client, ALICE) == 200


def test_an_added_token_works_without_a_restart(file_client, tokens_file):
    assert _status(file_client, CAROL) == 401
    tokens_file.write_text(json.dumps([_entry("alice", ALICE), _entry("carol", CAROL)]))
    _within(2.5, lambda: _status(file_client, CAROL) == 200)
    assert _status(file_client, BOB) == 401


def test_sighup_rereads_the_file_at_once(file_client, tokens_file):
    assert _status(file_client, BOB) == 200  # checked just now: the next check is a second away
    _rewrite(tokens_file, [_entry("alice", ALICE)])
    os.kill(os.getpid(), signal.SIGHUP)
    assert _status(file_client, BOB) == 401


def test_an_invalid_file_keeps_the_last_good_set_and_says_so_once(file_client, tokens_file, caplog):
    caplog.set_level(logging.INFO, logger="berth.auth")
    broken = [_entry("alice", ALICE), {"name": "bob", "token": BOB, "scopes": ["fly"]}]
    _rewrite(tokens_file, broken)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:  # several checks see the same broken file
        assert _status(file_client, ALICE) == 200 and _status(file_client, BOB) == 200
        time.sleep(0.1)
    errors = _errors(caplog)
    assert len(errors) == 1
    assert "bob" in errors[0].getMessage() and "previous set" in errors[0].getMessage()
    assert all(BOB not in r.getMessage() and ALICE not in r.getMessage() for r in caplog.records)
    _rewrite(tokens_file, "[{not json")
    _within(2.5, lambda: _status(file_client, BOB) == 200 and len(_errors(caplog)) == 2)
    _rewrite(tokens_file, [_entry("alice", ALICE)])  # fixed: takes effect
    _within(2.5, lambda: _status(file_client, BOB) == 401)


def _errors(caplog):
    return [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "berth.auth"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _announce(tmp_path, out):
    config = {
        **DEFAULTS,
        "DOCKER_HOST": f"unix://{tmp_path}/missing.sock",
        "BERTH_DATA_DIR": str(tmp_path / "data"),
    }
    announce("127.0.0.1:8080", out=out, config=config)
    return out.getvalue(), (tmp_path / "data" / "admin.token").read_text().strip()


def test_the_bootstrap_token_is_not_printed_without_a_terminal(tmp_path):
    output, token = _announce(tmp_path, io.StringIO())
    assert token not in output
    assert f"{tmp_path / 'data' / 'admin.token'} (mode 0600" in output
    assert "$(cat " in output  # the curl example reads the file


def test_the_bootstrap_token_is_shown_on_a_terminal(tmp_path):
    output, token = _announce(tmp_path, _Terminal())
    assert token in output
    again, _ = _announce(tmp_path, _Terminal())  # later starts never print it
    assert token not in again
