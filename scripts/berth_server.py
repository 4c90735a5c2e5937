"""Berth under a real gunicorn on loopback, for the tests and the benchmarks.

One place for what both need: a free port, starting ``gunicorn -c gunicorn.conf.py`` in a
process group of its own, waiting until it answers, and stopping it with everything it
started. Standard library only: the harness (run by a plain ``python3``) imports ``free_port``.
Run from the repository root, bench scripts import it with the root on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port(taken: set[int] | None = None) -> int:
    """A loopback TCP port nothing listens on now (and not in ``taken``)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not taken or port not in taken:
            return port


def stop_process(process: subprocess.Popen | None, timeout: float = 30) -> None:
    """Stop a process started with ``start_new_session=True``, and everything it started."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def answers(url: str, timeout: float = 1) -> int | None:
    """The status ``url`` answers with (a certificate is not checked), or None if it does not.

    ``Connection: close``: no worker still holds this connection once the caller goes on.
    """
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url, headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


def wait_until_serving(
    url: str, process: subprocess.Popen, log_path: Path, timeout: float = 30
) -> None:
    """Until ``url`` answers 200; RuntimeError with the end of the log if the process exits
    or ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while answers(url) != 200:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{process.args[0]} exited:\n{tail}")
        if time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{tail}")
        time.sleep(0.2)


def gunicorn_command(app: str = "wsgi:app", *args: str) -> list[str]:
    """The command that serves ``app`` with Berth's settings; run it from the repository root."""
    return [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py", *args, app]


class GunicornServer:
    """A started gunicorn: its ``url``, its ``process`` (the master) and its log."""

    def __init__(self, process: subprocess.Popen, url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def stop(self) -> None:
        stop_process(self.process)


def start_gunicorn(
    env: dict[str, str],
    log_path: Path,
    *,
    port: int | None = None,
    app: str = "wsgi:app",
    args: tuple[str, ...] = (),
    ready_path: str = "/v1/health",
    tls: bool = False,
    root: Path = ROOT,
) -> GunicornServer:
    """``gunicorn -c gunicorn.conf.py [args] app`` from the repository root, serving.

    ``env`` goes over a clean environment (``PATH`` only) and ``BERTH_BIND`` is set to the port;
    gunicorn's output goes to ``log_path``. ``tls``: ``env`` names a certificate, so the URL is
    https. ``root``: the checkout to serve (another commit's, for a side-by-side benchmark).
    Stopped again if it does not answer ``ready_path`` in time.
    """
    port = port or free_port()
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BERTH_BIND": f"127.0.0.1:{port}",
        **env,
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            gunicorn_command(app, *args),
            cwd=root,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = GunicornServer(process, f"{'https' if tls else 'http'}://127.0.0.1:{port}", log_path)
    try:
        wait_until_serving(server.url + ready_path, process, log_path)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running_gunicorn(env: dict[str, str], log_path: Path, **options) -> Iterator[GunicornServer]:
    """``start_gunicorn`` for the length of a block; stopped whatever happens."""
    server = start_gunicorn(env, log_path, **options)
    try:
        yield server
    finally:
        server.stop()
