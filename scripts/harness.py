#!/usr/bin/env python3
"""Test harness for Berth: a private Docker engine plus three local registries.

Everything lives under one directory DIR (socket, data, logs, configs), so
several harnesses can coexist and nothing touches the host's own engine.

Subcommands
    start [--dir DIR]            start dockerd + registries, build the base image,
                                 write DIR/harness.json, print DIR on stdout
    stop --dir DIR               stop everything recorded in DIR/harness.json,
                                 unmount leftovers under DIR and remove DIR
    stop-registry  --dir DIR --name NAME   stop one registry (open|basic|token)
    start-registry --dir DIR --name NAME   restart it on the same port/storage
    start --engines N            also start N empty engines fleet-1..N (DIR/f1, ...)
    stop-engine  --dir DIR [--name fleet-N]  stop the private dockerd or a fleet engine
                                 (fault tests; with running containers this takes ~10 s,
                                 their default stop timeout)
    start-engine --dir DIR       restart it with the same settings
    env --dir DIR                print `export BERTH_TEST_HARNESS=DIR/harness.json`

DIR/harness.json (the "state") looks like:
    {
      "dir": DIR,
      "docker_host": "unix://DIR/docker.sock",
      "docker_cli": path of a docker CLI verified to talk to this engine,
      "docker_config": DIR/docker-config  (use as DOCKER_CONFIG; never ~/.docker),
      "dockerd_pid": int | null,
      "containerd_pid": int | null   (containerd spawned by that dockerd),
      "registries": {
        "open":  {"address": "127.0.0.1:PORT", "pid": int | null},
        "basic": {"address", "pid", "username": "berth", "password": "...",
                  "realm": "berth-basic", "htpasswd": DIR/htpasswd},
        "token": {"address", "pid", "token_port", "realm": "http://127.0.0.1:TOKEN_PORT/token",
                  "service": "berth-registry", "issuer": "berth-test-issuer",
                  "key": DIR/token.key, "cert": DIR/token.crt}
      },
      "base_image": "berth-test/busybox:latest",
      "engines": {"fleet-1": {"dir": DIR/f1, "docker_host": "unix://DIR/f1/docker.sock",
                              "dockerd_pid", "containerd_pid"}, ...}   (start --engines N)
    }

Token registry: the token *issuer* is not run here; tests serve it on
token_port.  distribution v2.8 accepts a JWT when
  * header: {"typ": "JWT", "alg": "RS256", "x5c": [base64(DER of token.crt)]}
    (x5c is the easy way: the chain is verified against rootcertbundle =
    token.crt; the alternative "kid" must be the libtrust fingerprint of the key),
  * signature: RS256 over "b64url(header).b64url(claims)" with token.key,
  * claims: iss == issuer; aud == service as a plain string (a JSON array is
    rejected as "malformed token" by v2.8); exp required, nbf optional (unix
    seconds, both checked with 60 s leeway); iat/sub/jti are not checked;
    access = [{"type": "repository", "name": "busybox", "actions": ["pull", "push"]}]
    (empty access suffices for GET /v2/; /v2/_catalog needs
    {"type": "registry", "name": "catalog", "actions": ["*"]}).
  * the engine asks the realm GET /token?account=U&client_id=docker&offline_token=true
    &service=berth-registry on login and ...&scope=repository:NAME:push,pull on
    push/pull, with HTTP Basic credentials; answer {"token": JWT, "access_token": JWT,
    "expires_in": 300}.
make_registry_token() below builds such a token with the openssl CLI.

The logic is importable: load_state(), save_state(), start_engine(state),
stop_engine(state), start_registry(state, name), stop_registry(state, name).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# Run as a script (python scripts/harness.py) or loaded from its file: the root is not always on
# the path.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.berth_server import free_port  # noqa: E402

State = dict[str, Any]

STATE_FILE = "harness.json"
MARKER_FILE = ".berth-harness"  # only directories carrying it are ever removed
BASE_IMAGE = "berth-test/busybox:latest"
REGISTRY_NAMES = ("open", "basic", "token")
TOKEN_SERVICE = "berth-registry"
TOKEN_ISSUER = "berth-test-issuer"
BASIC_USER = "berth"
BASIC_REALM = "berth-basic"
# mmdebstrap: the container image test builds its Debian base with it (scripts/base-image.sh).
# chromium: the browser tests (Swagger UI, the portal) drive it headless through playwright.
APT_PACKAGES = [
    "docker.io",
    "docker-registry",
    "busybox-static",
    "apache2-utils",
    "mmdebstrap",
    "chromium",
]
APPLETS = [
    "sh",
    "ls",
    "cat",
    "echo",
    "touch",
    "mkdir",
    "rm",
    "sleep",
    "true",
    "false",
    "dd",
    "head",
    "tail",
    "wc",
    "env",
    "id",
    "tar",
    "sync",
    "printf",
    "test",
    "[",
    "grep",
    "sed",
    "ps",
    "kill",
    "date",
    "hostname",
    "pwd",
    "cp",
    "mv",
    "ln",
    "chmod",
    "uname",
    "whoami",
    "find",
    "stat",
    "du",
    "df",
    "mount",
    "seq",
    "sort",
    "tee",
    "yes",
    "basename",
    "dirname",
    "readlink",
    "xargs",
    "sha256sum",
    "md5sum",
]
ENGINE_TIMEOUT = 60.0
REGISTRY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


class HarnessError(Exception):
    """A failure with a one-sentence reason and optionally a log worth showing."""

    def __init__(self, reason: str, log: Path | str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.log = Path(log) if log else None


def log(msg: str) -> None:
    print(f"harness: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- state


def state_path(directory: Path | str) -> Path:
    return Path(directory) / STATE_FILE


def load_state(path: Path | str) -> State:
    """Load a state from DIR or DIR/harness.json."""
    path = Path(path)
    if path.is_dir():
        path = state_path(path)
    return json.loads(path.read_text())


def save_state(state: State) -> None:
    path = state_path(state["dir"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


# The private engine reaches loopback registries directly and everything else only through a
# proxy that does not exist: a pull of "busybox" (Docker Hub) fails at once instead of leaving
# the machine, whatever a test (or a fuzzer) asks for.
SINK_PROXY = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost,::1,127.0.0.0/8",
}


def clean_env(**extra: str) -> dict[str, str]:
    """Environment for children: no proxies (all traffic is loopback)."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- packages


def elf_is_static(path: str) -> bool:
    """True if the ELF binary has no PT_INTERP program header (statically linked)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return False
        order = "little" if head[5] == 1 else "big"
        phoff = int.from_bytes(head[0x20:0x28], order)
        phentsize = int.from_bytes(head[0x36:0x38], order)
        phnum = int.from_bytes(head[0x38:0x3A], order)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if int.from_bytes(f.read(4), order) == 3:  # PT_INTERP
                return False
    return True


def static_busybox() -> str | None:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.isfile(candidate) and elf_is_static(candidate):
            return candidate
    return None


def missing_packages() -> list[str]:
    checks = {
        "docker.io": shutil.which("dockerd")
        and (shutil.which("docker") or os.path.exists("/usr/bin/docker")),
        "docker-registry": shutil.which("docker-registry"),
        "busybox-static": static_busybox(),
        "apache2-utils": shutil.which("htpasswd"),
        "openssl": shutil.which("openssl"),
        "mmdebstrap": shutil.which("mmdebstrap"),
        "chromium": shutil.which("chromium"),
    }
    return [pkg for pkg, ok in checks.items() if not ok]


def ensure_packages() -> None:
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise HarnessError(
            f"missing packages {' '.join(missing)}; "
            "run as root so the harness can apt-get install them"
        )
    log(f"installing {' '.join(missing)}")
    env = clean_env(DEBIAN_FRONTEND="noninteractive")
    env.update({k: v for k, v in os.environ.items() if k in PROXY_VARS})  # apt may need a proxy
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", *sorted(set(APT_PACKAGES + missing))],
    ):
        if subprocess.run(cmd, env=env).returncode != 0:
            raise HarnessError(f"`{' '.join(cmd)}` failed")
    if missing_packages():
        raise HarnessError(f"still missing after apt-get: {' '.join(missing_packages())}")


# --------------------------------------------------------------------------- processes


def read_cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def is_alive(pid: int | None) -> bool:
    """True if pid runs and is not a zombie (reaping it if it is our child)."""
    if not pid:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def owned_by(pid: int | None, directory: str) -> bool:
    """Guard against pid reuse: our processes all mention DIR on their command line."""
    return bool(pid) and is_alive(pid) and directory in read_cmdline(pid)


def terminate(pid: int | None, directory: str, what: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait up to timeout, then SIGKILL -- only if the process is ours."""
    if not owned_by(pid, directory):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    if wait_dead(pid, timeout):
        return
    log(f"{what} (pid {pid}) ignored SIGTERM for {timeout:.0f}s, sending SIGKILL")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not wait_dead(pid, 10):
        raise HarnessError(f"{what} (pid {pid}) survived SIGKILL")


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.1)
    return not is_alive(pid)


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def parent_pid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def spawn(cmd: list[str], logfile: Path, env: dict[str, str] | None = None) -> int:
    """Start a daemon in its own session, appending its output to logfile."""
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or clean_env(),
            start_new_session=True,
        )
    return proc.pid


def wait_until(check, pid: int, timeout: float, what: str, logfile: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not is_alive(pid):
            raise HarnessError(f"{what} exited during startup", logfile)
        time.sleep(0.2)
    raise HarnessError(f"{what} did not become ready within {timeout:.0f}s", logfile)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- engine


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float = 5.0):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def engine_ping(state: State) -> bool:
    conn = UnixHTTPConnection(engine_socket(state), timeout=2)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"OK"
    except OSError:
        return False
    finally:
        conn.close()


def engine_socket(state: State) -> str:
    return state["docker_host"].removeprefix("unix://")


def engine_command(directory: Path) -> list[str]:
    return [
        "dockerd",
        "--config-file",
        str(directory / "daemon.json"),  # ignore /etc/docker/daemon.json
        "--data-root",
        str(directory / "data"),
        "--exec-root",
        str(directory / "exec"),
        "--pidfile",
        str(directory / "dockerd.pid"),
        "-H",
        f"unix://{directory}/docker.sock",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--containerd-namespace",
        "berth-test",
        "--containerd-plugins-namespace",
        "berth-test-plugins",
    ]


def find_containerd(dockerd_pid: int) -> int | None:
    for pid in all_pids():
        if parent_pid(pid) == dockerd_pid and read_cmdline(pid).split(" ")[0].endswith(
            "containerd"
        ):
            return pid
    return None


def engine_record(state: State, name: str | None = None) -> dict[str, Any]:
    """The main engine (``name`` None: the state itself) or a fleet engine's record."""
    return state if name is None else state["engines"][name]


def start_engine(state: State, name: str | None = None) -> None:
    """Start a private dockerd and wait for /_ping; records pids in the state."""
    engine = engine_record(state, name)
    directory = Path(engine["dir"])
    if owned_by(engine.get("dockerd_pid"), engine["dir"]):
        return
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "daemon.json").write_text("{}\n")
    logfile = directory / "dockerd.log"
    pid = spawn(engine_command(directory), logfile, env=clean_env(**SINK_PROXY))
    engine["dockerd_pid"] = pid
    save_state(state)
    wait_until(lambda: engine_ping(engine), pid, ENGINE_TIMEOUT, "dockerd", logfile)
    engine["containerd_pid"] = find_containerd(pid)
    save_state(state)


def stop_engine(state: State, name: str | None = None) -> None:
    """Stop a dockerd, its containerd and any shim still pointing into its directory."""
    engine = engine_record(state, name)
    directory = engine["dir"]
    terminate(engine.get("dockerd_pid"), directory, "dockerd")
    terminate(engine.get("containerd_pid"), directory, "containerd")
    exec_root = os.path.join(directory, "exec") + "/"
    for pid in all_pids():  # containerd shims (they reparent to init) of this engine only
        if exec_root in read_cmdline(pid):
            terminate(pid, exec_root, f"leftover {read_cmdline(pid).split(' ')[0]}", timeout=5)
    Path(directory, "dockerd.pid").unlink(missing_ok=True)
    engine["dockerd_pid"] = None
    engine["containerd_pid"] = None
    save_state(state)


def kill_engine(state: State, name: str | None = None) -> None:
    """SIGKILL a dockerd (a crash, not a shutdown), then clean up as stop_engine does."""
    engine = engine_record(state, name)
    pid = engine.get("dockerd_pid")
    if owned_by(pid, engine["dir"]):
        os.kill(pid, signal.SIGKILL)
        if not wait_dead(pid, 10):
            raise HarnessError(f"dockerd (pid {pid}) survived SIGKILL")
    stop_engine(state, name)
    # Its containerd, orphaned, may linger as a zombie that nothing reaps; a new dockerd reading
    # this pid file would take it for a live containerd and wait for it in vain.
    Path(engine["dir"], "exec", "containerd", "containerd.pid").unlink(missing_ok=True)


def resolve_docker_cli(state: State) -> str:
    """The `docker` on PATH if it talks to our engine, else Debian's /usr/bin/docker."""
    candidates = [c for c in (shutil.which("docker"), "/usr/bin/docker") if c]
    for cli in dict.fromkeys(candidates):
        result = run_docker(
            state, ["version", "--format", "{{.Server.Version}}"], cli=cli, check=False
        )
        if result.returncode == 0:
            return cli
    raise HarnessError(
        f"no docker CLI among {candidates} can talk to the engine",
        Path(state["dir"]) / "dockerd.log",
    )


def run_docker(
    state: State,
    args: list[str],
    cli: str | None = None,
    check: bool = True,
    input: bytes | None = None,
) -> subprocess.CompletedProcess:
    cli = cli or state["docker_cli"]
    env = clean_env(DOCKER_CONFIG=state["docker_config"])
    env.pop("DOCKER_HOST", None)
    env.pop("DOCKER_CONTEXT", None)
    result = subprocess.run(
        [cli, "-H", state["docker_host"], *args], input=input, capture_output=True, env=env
    )
    if check and result.returncode != 0:
        raise HarnessError(f"`docker {' '.join(args)}` failed: {result.stderr.decode().strip()}")
    return result


def base_image_tar(busybox: str) -> bytes:
    """A root filesystem with a static busybox and symlinks for its applets."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(info)
        for name, text in (
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            ),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_base_image(state: State) -> None:
    busybox = static_busybox()
    if not busybox:
        raise HarnessError("no statically linked busybox found (install busybox-static)")
    run_docker(
        state,
        [
            "import",
            "-c",
            'CMD ["/bin/sh"]',
            "-c",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "-",
            state["base_image"],
        ],
        input=base_image_tar(busybox),
    )


# --------------------------------------------------------------------------- registries


def registry_config(state: State, name: str) -> str:
    """distribution v2 config YAML for one registry (JSON is valid YAML)."""
    directory = Path(state["dir"])
    reg = state["registries"][name]
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": f"registry-{name}"}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / f"registry-{name}")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": reg["address"], "secret": reg["secret"]},
    }
    if name == "basic":
        config["auth"] = {"htpasswd": {"realm": reg["realm"], "path": reg["htpasswd"]}}
    elif name == "token":
        config["auth"] = {
            "token": {
                "realm": reg["realm"],
                "service": reg["service"],
                "issuer": reg["issuer"],
                "rootcertbundle": reg["cert"],
            }
        }
    return json.dumps(config, indent=2) + "\n"


def registry_up(address: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}/v2/", timeout=2) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as err:
        return err.code == 401
    except OSError:
        return False


def start_registry(state: State, name: str) -> None:
    """(Re)start one registry on its recorded port and storage; waits for /v2/."""
    reg = state["registries"][name]
    directory = Path(state["dir"])
    if owned_by(reg.get("pid"), state["dir"]):
        return
    config = directory / f"registry-{name}.yml"
    config.write_text(registry_config(state, name))
    (directory / f"registry-{name}").mkdir(exist_ok=True)
    logfile = directory / f"registry-{name}.log"
    reg["pid"] = spawn(["docker-registry", "serve", str(config)], logfile)
    save_state(state)
    wait_until(
        lambda: registry_up(reg["address"]),
        reg["pid"],
        REGISTRY_TIMEOUT,
        f"registry {name}",
        logfile,
    )


def stop_registry(state: State, name: str) -> None:
    reg = state["registries"][name]
    terminate(reg.get("pid"), state["dir"], f"registry {name}")
    reg["pid"] = None
    save_state(state)


def make_credentials(state: State) -> None:
    """htpasswd file for `basic`, RSA key + self-signed cert for `token`."""
    directory = Path(state["dir"])
    basic = state["registries"]["basic"]
    result = subprocess.run(
        ["htpasswd", "-Bbn", basic["username"], basic["password"]], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise HarnessError(f"htpasswd failed: {result.stderr.strip()}")
    Path(basic["htpasswd"]).write_text(result.stdout.strip() + "\n")
    result = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(directory / "token.key"),
            "-out",
            str(directory / "token.crt"),
            "-days",
            "3650",
            "-subj",
            f"/CN={TOKEN_ISSUER}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise HarnessError(f"openssl failed: {result.stderr.strip()}")


def new_registries(directory: Path) -> dict[str, Any]:
    taken: set[int] = set()

    def address() -> str:
        port = free_port(taken)
        taken.add(port)
        return f"127.0.0.1:{port}"

    regs: dict[str, Any] = {
        name: {"address": address(), "pid": None, "secret": secrets.token_hex(16)}
        for name in REGISTRY_NAMES
    }
    regs["basic"].update(
        username=BASIC_USER,
        password=secrets.token_urlsafe(18),
        realm=BASIC_REALM,
        htpasswd=str(directory / "htpasswd"),
    )
    token_port = free_port(taken)
    regs["token"].update(
        token_port=token_port,
        realm=f"http://127.0.0.1:{token_port}/token",
        service=TOKEN_SERVICE,
        issuer=TOKEN_ISSUER,
        key=str(directory / "token.key"),
        cert=str(directory / "token.crt"),
    )
    return regs


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_registry_token(
    state: State,
    access: list[dict[str, Any]] | None = None,
    subject: str = "berth",
    ttl: int = 300,
    **claims: Any,
) -> str:
    """A JWT the `token` registry accepts (signed via the openssl CLI).

    access: e.g. [{"type": "repository", "name": "busybox", "actions": ["pull", "push"]}].
    Extra keyword claims override the defaults (e.g. aud="other" to get a rejected token).
    """
    reg = state["registries"]["token"]
    cert_der = ssl.PEM_cert_to_DER_cert(Path(reg["cert"]).read_text())
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(cert_der).decode()]}
    body = {
        "iss": reg["issuer"],
        "sub": subject,
        "aud": reg["service"],
        "exp": now + ttl,
        "nbf": now - 1,
        "iat": now,
        "jti": secrets.token_hex(8),
        "access": access or [],
    }
    body.update(claims)
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", reg["key"]],
        input=signing_input.encode(),
        capture_output=True,
        check=True,
    )
    return f"{signing_input}.{b64url(result.stdout)}"


# --------------------------------------------------------------------------- whole harness


def new_state(directory: Path) -> State:
    return {
        "dir": str(directory),
        "docker_host": f"unix://{directory}/docker.sock",
        "docker_cli": None,
        "docker_config": str(directory / "docker-config"),
        "dockerd_pid": None,
        "containerd_pid": None,
        "registries": new_registries(directory),
        "base_image": BASE_IMAGE,
    }


def prepare_dir(directory: Path | None) -> Path:
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="berth-harness-"))
    directory = directory.absolute()
    if state_path(directory).exists():
        raise HarnessError(
            f"{directory} already holds a harness; run `stop --dir {directory}` first"
        )
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER_FILE).exists():
        raise HarnessError(f"{directory} exists and is not empty; give a new or empty directory")
    # containerd's socket lives at DIR/exec/containerd/containerd.sock (unix paths max 107 bytes)
    if len(str(directory)) > 60:
        raise HarnessError(
            f"{directory} is too long a path for the engine's unix sockets; use a shorter one"
        )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER_FILE).touch()
    return directory


def new_fleet(directory: Path, count: int) -> dict[str, Any]:
    """Records for ``count`` extra engines (fleet-1, ...), each under DIR/fN, started empty."""
    return {
        f"fleet-{i}": {
            "dir": str(directory / f"f{i}"),
            "docker_host": f"unix://{directory}/f{i}/docker.sock",
            "dockerd_pid": None,
            "containerd_pid": None,
        }
        for i in range(1, count + 1)
    }


def start_all(directory: Path | None, engines: int = 0) -> State:
    if os.geteuid() != 0:
        raise HarnessError("the harness must run as root (dockerd needs it)")
    ensure_packages()
    directory = prepare_dir(directory)
    state = new_state(directory)
    state["engines"] = new_fleet(directory, engines)
    Path(state["docker_config"]).mkdir(exist_ok=True)
    save_state(state)
    try:
        make_credentials(state)
        log("starting dockerd")
        start_engine(state)
        for name in state["engines"]:
            log(f"starting extra engine {name}")
            start_engine(state, name)
        state["docker_cli"] = resolve_docker_cli(state)
        save_state(state)
        for name in REGISTRY_NAMES:
            log(f"starting registry {name} on {state['registries'][name]['address']}")
            start_registry(state, name)
        log(f"building {state['base_image']}")
        make_base_image(state)
    except BaseException:
        stop_processes(state)
        unmount_under(state["dir"])
        raise
    return state


def stop_processes(state: State) -> None:
    for name in REGISTRY_NAMES:
        if name in state.get("registries", {}):
            stop_registry(state, name)
    for name in state.get("engines", {}):
        stop_engine(state, name)
    stop_engine(state)


def mounts_under(directory: str) -> list[str]:
    prefix = directory.rstrip("/") + "/"
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split(" ")[1].encode().decode("unicode_escape")  # \040 etc.
        if point.startswith(prefix) or point == directory:
            found.append(point)
    return found


def unmount_under(directory: str) -> None:
    for point in reversed(mounts_under(directory)):
        subprocess.run(["umount", "-l", point], capture_output=True)
    left = mounts_under(directory)
    if left:
        raise HarnessError(f"could not unmount {left[0]} (and {len(left) - 1} more)")


def stop_all(directory: Path) -> None:
    """Idempotent: stop what harness.json records, unmount, remove DIR."""
    directory = directory.absolute()
    if not directory.exists():
        return
    if not (directory / MARKER_FILE).exists() and not state_path(directory).exists():
        raise HarnessError(f"{directory} is not a harness directory; refusing to remove it")
    if state_path(directory).exists():
        stop_processes(load_state(directory))
    unmount_under(str(directory))
    shutil.rmtree(directory)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in (
        "start",
        "stop",
        "stop-engine",
        "start-engine",
        "env",
        "stop-registry",
        "start-registry",
    ):
        p = sub.add_parser(name)
        p.add_argument(
            "--dir",
            type=Path,
            required=name != "start",
            help="harness directory" + (" (default: a new temp dir)" if name == "start" else ""),
        )
        if name.endswith("-registry"):
            p.add_argument("--name", required=True, choices=REGISTRY_NAMES)
        if name.endswith("-engine"):
            p.add_argument("--name", help="a fleet engine (fleet-N); default: the main engine")
        if name == "start":
            p.add_argument(
                "--engines", type=int, default=0, help="extra empty engines fleet-1..N to start"
            )
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            state = start_all(args.dir, args.engines)
            log(f"ready; export BERTH_TEST_HARNESS={state_path(state['dir'])}")
            print(state["dir"])
        elif args.command == "stop":
            stop_all(args.dir)
        elif args.command == "env":
            print(f"export BERTH_TEST_HARNESS={state_path(args.dir.absolute())}")
        else:
            state = load_state(args.dir)
            action = {"stop-engine": stop_engine, "start-engine": start_engine}.get(args.command)
            if action:
                action(state, args.name)
            elif args.command == "stop-registry":
                stop_registry(state, args.name)
            else:
                start_registry(state, args.name)
    except HarnessError as err:
        print(f"harness: error: {err.reason}", file=sys.stderr)
        if err.log:
            print(f"--- tail of {err.log} ---\n{tail(err.log)}", file=sys.stderr)
        if args.command == "start" and err.log:
            print(
                f"harness: processes stopped; `stop --dir {err.log.parent}` removes the directory",
                file=sys.stderr,
            )
        return 1
    except FileNotFoundError as err:
        print(f"harness: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
