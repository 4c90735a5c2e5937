"""Docker's own clients through Berth's Engine-API front door, under a real gunicorn.

``front_door(harness, data_dir, allowed)`` starts Berth with two engine names on the harness's
engine (``local`` and ``staging-1``) and these tokens; ``DockerCLI`` runs the harness's docker CLI
with ``DOCKER_HOST=tcp://127.0.0.1:PORT/engines/<engine>`` and a config.json of its own carrying
the token in ``HttpHeaders`` (never the user's ~/.docker).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.gunicorn import GunicornServer, gunicorn_server

ALL_SCOPES = ["read", "write", "delete", "push", "export"]
TOKENS = {
    "images": ALL_SCOPES,
    "read": ["read"],
    "staging": ALL_SCOPES,
    "metrics": ["metrics"],
}


def token_entries(secrets_by_name: dict[str, str]) -> list[dict]:
    entries = []
    for name, scopes in TOKENS.items():
        entry = {"name": name, "token": secrets_by_name[name], "scopes": scopes}
        if name == "staging":
            entry["engines"] = ["staging-*"]
        entries.append(entry)
    return entries


@contextmanager
def front_door(
    harness: dict, data_dir: Path, allowed: Sequence[str] = ()
) -> Iterator[tuple[GunicornServer, dict[str, str]]]:
    """Berth under gunicorn, its outbound policy allowing the harness's registries and
    ``allowed``; yields the server and the token of each name in ``TOKENS``."""
    tokens = {name: f"berth-{name}-{secrets.token_hex(12)}" for name in TOKENS}
    registries = [entry["address"] for entry in harness["registries"].values()]
    env = {
        "DOCKER_HOST": harness["docker_host"],
        "BERTH_ENGINES": json.dumps(
            {"local": harness["docker_host"], "staging-1": harness["docker_host"]}
        ),
        "BERTH_DATA_DIR": str(data_dir),
        "BERTH_ALLOWED_REGISTRIES": ",".join([*registries, *allowed]),
        "BERTH_ALLOW_PUBLIC_REGISTRIES": "false",
    }
    with gunicorn_server(env, tokens=token_entries(tokens)) as server:
        yield server, tokens


class DockerCLI:
    """The docker CLI pointed at one engine through Berth, with its own config directory."""

    def __init__(self, cli: str, url: str, engine: str, config_dir: Path, token: str | None):
        self.cli = cli
        self.host = url.replace("http://", "tcp://") + f"/engines/{engine}"
        self.config_dir = config_dir
        config_dir.mkdir(parents=True, exist_ok=True)
        config: dict = {}
        if token is not None:
            config["HttpHeaders"] = {"Authorization": f"Bearer {token}"}
        (config_dir / "config.json").write_text(json.dumps(config))

    def run(
        self, *args: str, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.config_dir),
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": str(self.config_dir),
            "DOCKER_BUILDKIT": "0",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        return subprocess.run(
            [self.cli, *args], env=env, input=input, capture_output=True, timeout=timeout
        )

    def ok(self, *args: str, input: bytes | None = None, timeout: float = 120) -> str:
        """Run and require success; the standard output as text."""
        done = self.run(*args, input=input, timeout=timeout)
        assert done.returncode == 0, (args, done.stdout.decode()[-2000:], done.stderr.decode())
        return done.stdout.decode()
