"""What the server checks and says when it starts: that its address is free (with
``BERTH_REUSE_PORT``), the bootstrap token, and whether an engine answers.

Called from ``gunicorn.conf.py`` once, in the master, before workers load the app.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any, TextIO

from app.config import docker_environment, load_config
from app.engine import Engine
from app.errors import BerthError
from app.http.auth import ensure_bootstrap_token

log = logging.getLogger("berth.startup")


def announce(
    bind: str,
    out: TextIO = sys.stderr,
    config: dict[str, Any] | None = None,
    scheme: str = "http",
) -> dict[str, Any]:
    """Create the admin token if none is configured, then check the engine; print both.

    The token itself is printed only when ``out`` is a terminal: otherwise (``docker logs``,
    journald, a file) the log says where the token is stored, never the token.
    """
    config = load_config() if config is None else config
    base = f"{scheme}://{bind}"
    if config["BERTH_AUTH"] == "disabled":
        print(
            "WARNING: BERTH_AUTH=disabled - anyone who reaches this port has root on the host.",
            file=out,
        )
    elif config.get("BERTH_TOKENS") is None and not config.get("BERTH_TOKENS_FILE"):
        token, path = ensure_bootstrap_token(config)
        if token and _is_terminal(out):
            print(f"Created an admin token (stored in {path}, mode 0600):", file=out)
            print(f"\n    {token}\n", file=out)
        else:
            made = "Created an admin token" if token else "Using the admin token"
            print(f"{made}; it is stored in {path} (mode 0600, for this user only).", file=out)
            token = "$(cat " + str(path) + ")"
        print(f'Try:  curl -H "Authorization: Bearer {token}" {base}/v1/images\n', file=out)
    engine = Engine("local", docker_environment(config), timeout=5)
    where = config.get("DOCKER_HOST") or "the local socket (unix:///var/run/docker.sock)"
    try:
        version = engine.version()
        print(
            f"Docker engine {version['version']} (API {version['api_version']}) at {where}.",
            file=out,
        )
    except BerthError:
        print(
            f"No Docker engine answers at {where}: start one, or set DOCKER_HOST "
            "(e.g. DOCKER_HOST=unix:///run/docker.sock or tcp://host:2376 with DOCKER_TLS_VERIFY "
            "and DOCKER_CERT_PATH); Berth serves meanwhile and /v1/ready says 503.",
            file=out,
        )
    finally:
        engine.close()
    print(f"Berth listens on {base} - API docs at {base}/apidocs/", file=out)
    return config


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def refuse_taken_addresses(addresses: list[Any]) -> None:
    """Exit when a TCP address Berth is to listen on is already taken.

    With ``BERTH_REUSE_PORT`` each worker listens on a socket of its own with ``SO_REUSEPORT``
    (``gunicorn.conf.py``), and the kernel would let a second server of the same user join
    those sockets and take a share of the connections, where one shared listener fails with
    "address in use". A plain bind (no ``SO_REUSEPORT``) fails while any socket listens there,
    so a second start fails loudly. Unix socket addresses are left to gunicorn.
    """
    for address in addresses:
        if not isinstance(address, tuple):
            continue
        host, port = address[0], address[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
            try:
                probe.bind((host, port))
            except OSError as e:
                raise SystemExit(
                    f"Berth cannot listen on {host}:{port}: {e.strerror} "
                    "(another server, perhaps another Berth, listens there)."
                ) from e
