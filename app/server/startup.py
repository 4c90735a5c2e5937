"""What the server checks and says when it starts, once, in the master, before any worker.

``gunicorn.conf.py``'s ``on_starting`` calls :func:`start`: it refuses a configuration the app
would refuse (settings, tokens, engines, outbound rules) in one line and exits non-zero, so no
worker boots into a traceback; refuses a TCP address already taken (with ``BERTH_REUSE_PORT``);
creates the bootstrap token when none is configured; and prints the addresses gunicorn binds
(``-b`` and ``GUNICORN_CMD_ARGS`` included) and every engine of ``BERTH_ENGINES`` with whether
it answers.
"""

from __future__ import annotations

import logging
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from app.config import docker_environment, load_config
from app.engine import Engine
from app.engine.pool import engine_environments
from app.errors import BerthError
from app.http.auth import TokenStore, ensure_bootstrap_token, load_token_entries
from app.registry.policy import OutboundPolicy

log = logging.getLogger("berth.startup")

ENGINE_CHECK_SECONDS = 5.0


def start(server: Any, out: TextIO = sys.stderr) -> None:
    """Everything ``on_starting`` does (see the module docstring); SystemExit on a refusal."""
    config = checked_config()
    if server.cfg.reuse_port:
        refuse_taken_addresses(server.cfg.address)
    scheme = "https" if server.cfg.is_ssl else "http"
    announce([bound_address(a) for a in server.cfg.address], out=out, config=config, scheme=scheme)


def checked_config() -> dict[str, Any]:
    """The configuration from the environment, checked as the app will use it.

    SystemExit with one line naming the problem, before any worker starts, otherwise.
    """
    try:
        config = load_config()
        if config["BERTH_AUTH"] == "enabled":
            TokenStore(load_token_entries(config))
        engine_environments(config.get("BERTH_ENGINES"), docker_environment(config))
        OutboundPolicy.from_config(config)
    except ValueError as e:  # ConfigError, TokenConfigError, EngineSpecError, policy rules
        raise SystemExit(f"Berth: configuration refused: {e}") from None
    return config


def bound_address(address: Any) -> str:
    """One of gunicorn's parsed addresses as a client would write it."""
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(address, int):
        return f"fd://{address}"
    return f"unix:{address}"


def announce(
    bind: str | list[str],
    out: TextIO = sys.stderr,
    config: dict[str, Any] | None = None,
    scheme: str = "http",
) -> dict[str, Any]:
    """Create the admin token if none is configured, then check every engine; print both.

    The token itself is printed only when ``out`` is a terminal: otherwise (``docker logs``,
    journald, a file) the log says where the token is stored, never the token.
    """
    config = load_config() if config is None else config
    binds = [bind] if isinstance(bind, str) else list(bind)
    tcp = [b for b in binds if not b.startswith(("unix:", "fd:"))]
    base = f"{scheme}://{tcp[0] if tcp else 'localhost'}"  # for the examples printed
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
    _announce_engines(config, out)
    where = ", ".join(b if b.startswith(("unix:", "fd:")) else f"{scheme}://{b}" for b in binds)
    print(f"Berth listens on {where} - API docs at {base}/apidocs/", file=out)
    return config


def _announce_engines(config: dict[str, Any], out: TextIO) -> None:
    """One line per engine: its version, or a warning that it does not answer."""
    environments = engine_environments(config.get("BERTH_ENGINES"), docker_environment(config))
    several = config.get("BERTH_ENGINES") is not None
    with ThreadPoolExecutor(max_workers=min(8, len(environments))) as pool:
        versions = list(pool.map(lambda item: _version(*item), environments.items()))
    for (name, env), version in zip(environments.items(), versions, strict=True):
        where = env.get("DOCKER_HOST") or "the local socket (unix:///var/run/docker.sock)"
        label = f"Engine '{name}': " if several else ""
        if version is not None:
            print(
                f"{label}Docker engine {version['version']} (API {version['api_version']}) "
                f"at {where}.",
                file=out,
            )
        elif several:
            print(
                f"WARNING: engine '{name}' does not answer at {where}; its requests are "
                "answered 503 ENGINE_UNAVAILABLE until it does.",
                file=out,
            )
        else:
            print(
                f"No Docker engine answers at {where}: start one, or set DOCKER_HOST "
                "(e.g. DOCKER_HOST=unix:///run/docker.sock or tcp://host:2376 with "
                "DOCKER_TLS_VERIFY and DOCKER_CERT_PATH); Berth serves meanwhile and /v1/ready "
                "says 503.",
                file=out,
            )


def _version(name: str, environment: dict[str, str]) -> dict[str, Any] | None:
    engine = Engine(name, environment, timeout=ENGINE_CHECK_SECONDS)
    try:
        return engine.version()
    except BerthError:
        return None
    finally:
        engine.close()


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
