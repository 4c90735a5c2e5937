"""Run Berth under a real gunicorn process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.berth_server import GunicornServer, free_port, running_gunicorn
from tests.support.harness import ROOT

__all__ = [
    "ESTABLISHED",
    "LISTEN",
    "GunicornServer",
    "free_port",
    "gunicorn_server",
    "tcp_sockets",
    "wait_for",
]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` seconds (log lines are written by a thread
    of each worker, a moment after the response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def tcp_sockets(pid: int, port: int, state: str) -> set[int]:
    """The inodes of the TCP sockets process ``pid`` holds on local ``port`` in ``state``."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(int(target[len("socket:[") : -1]))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(int(fields[9]))
    return held & found


@contextmanager
def gunicorn_server(
    env: dict[str, str],
    workers: int = 2,
    threads: int = 8,
    tokens: list[dict] | None = None,
    tls: bool = False,
) -> Iterator[GunicornServer]:
    """Start ``gunicorn -c gunicorn.conf.py wsgi:app``, ``env`` over a clean environment.

    ``tls``: ``env`` names a certificate (``BERTH_TLS_CERT``), so the URL is https."""
    data_dir = Path(env.get("BERTH_DATA_DIR") or ROOT / "var")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = {"BERTH_WORKERS": str(workers), "BERTH_THREADS": str(threads), **env}
    if tokens is not None:
        full_env["BERTH_TOKENS"] = json.dumps(tokens)
    log_path = data_dir / f"gunicorn-{port}-{uuid.uuid4().hex[:8]}.log"
    with running_gunicorn(full_env, log_path, port=port, tls=tls) as server:
        yield server
