"""Run Berth under a real gunicorn process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.harness import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` seconds (log lines are written by a thread
    of each worker, a moment after the response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


class GunicornServer:
    """A started gunicorn; ``url`` is its base URL, ``output`` what it printed so far."""

    def __init__(self, process: subprocess.Popen, url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []


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
    port = free_port()
    data_dir = Path(env.get("BERTH_DATA_DIR") or ROOT / "var")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"gunicorn-{port}-{uuid.uuid4().hex[:8]}.log"
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BERTH_BIND": f"127.0.0.1:{port}",
        "BERTH_WORKERS": str(workers),
        "BERTH_THREADS": str(threads),
        **env,
    }
    if tokens is not None:
        full_env["BERTH_TOKENS"] = json.dumps(tokens)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    scheme = "https" if tls else "http"
    server = GunicornServer(process, f"{scheme}://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {server.output[-2000:]}")
            try:
                # Connection: close, so that no worker still holds this connection when the
                # test starts; a test's own certificate is not checked here.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ready = requests.get(
                        server.url + "/v1/health",
                        timeout=1,
                        verify=not tls,
                        headers={"Connection": "close"},
                    )
                if ready.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not serve in time: {server.output[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
