#!/usr/bin/env python3
"""Load benchmark: Berth's metadata reads beside a read-only engine proxy, on loopback.

Run by hand, from the repository root, with the project's Python:

    DOCKER_HOST=unix:///var/run/docker.sock python bench/load.py            # full run, ~26 min
    python bench/load.py --duration 10 --connections 16 --endpoints inspect  # a quick look

What it does, all on 127.0.0.1 against one engine (a unix socket):

* the **peer**: Debian's ``haproxy`` in front of the engine socket with a GET-only allow-list for
  ``/images`` (the docker-socket-proxy pattern people deploy to expose an engine read-only);
* **Berth** under gunicorn with ``gunicorn.conf.py`` (tokens on, access log written to a file);
* ``wrk`` (a C load generator: a Python one tops out near 3,000 requests/s and would measure
  itself) drives inspect, list and history on both, at each connection count, first alone and
  then while a 1 GiB image archive streams out of the same server in a loop (``docker save``
  through the peer; ``GET /v1/images/{ref}/archive`` through Berth);
* it prints requests/s, p50/p99 latency and errors for both, the ratios, and the targets
  (zero errors; Berth inspect at 16 connections >= 0.5x the peer; p99 inspect <= 50 ms while the
  save streams).

It creates two images (a small one to read, a 1 GiB one to save) and removes them at the end,
unless ``--keep-images``; haproxy and gunicorn are stopped whatever happens. Each run lasts
``--duration`` seconds (at most 300); the number of runs is fixed by the options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run by hand as bench/load.py
    sys.path.insert(0, str(ROOT))
from scripts.berth_server import free_port, start_gunicorn, stop_process  # noqa: E402

META_IMAGE = "berth-bench/meta:latest"
BIG_IMAGE = "berth-bench/big:latest"
BENCH_LABEL = "berth.bench"
ENDPOINTS = ("inspect", "list", "history")
MAX_DURATION = 300

WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

HAPROXY_CONFIG = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend engine_read_only
    bind 127.0.0.1:{port}
    acl images_path path,url_dec -m reg ^/(v[0-9.]+/)?images(/|$)
    http-request deny unless METH_GET images_path
    default_backend engine
backend engine
    server engine {socket}
"""


class BenchError(Exception):
    """Something the benchmark needs is missing; the message says what to do."""


@dataclass
class Result:
    target: str
    endpoint: str
    connections: int
    during_save: bool
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    saves: int = 0
    save_mib_per_s: float | None = None
    cpu_us_per_request: float | None = None
    load_average: float = 0.0
    worker_connections: list[int] = field(default_factory=list)  # Berth: wrk's, per worker


@dataclass
class Target:
    name: str
    base: str
    paths: dict[str, str]
    save_path: str
    headers: dict[str, str] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)  # whose CPU serves it (process trees)
    process: subprocess.Popen | None = None
    log: Path | None = None


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "haproxy", "curl") if shutil.which(tool) is None]
    if missing:
        raise BenchError(
            f"missing {', '.join(missing)}: install with `sudo apt-get install "
            f"{' '.join(missing)}` (Debian/Ubuntu packages)"
        )


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise BenchError(
            f"DOCKER_HOST={host}: the benchmark runs on loopback against a local engine socket "
            "(unix://...), which the haproxy peer also needs"
        )
    path = host[len("unix://") :]
    if not os.path.exists(path):
        raise BenchError(f"no engine socket at {path} (set DOCKER_HOST=unix:///path/docker.sock)")
    return path


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise BenchError(f"{url} did not start: {log.read_text(errors='replace')[-2000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{url} did not answer within {timeout} s")
        time.sleep(0.2)


# ---- images ----


def _tar_stream(name: str, size: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A tar holding one file of ``size`` random bytes, generated as it is sent."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = int(time.time())
    yield info.tobuf(format=tarfile.USTAR_FORMAT)
    left = size
    while left:
        n = min(chunk, left)
        yield os.urandom(n)
        left -= n
    yield b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024


def ensure_image(client: docker.APIClient, ref: str, size: int, changes: list[str]) -> bool:
    """Create ``ref`` by importing a generated tar unless it exists; whether it was created."""
    marker = f"{BENCH_LABEL}={size}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        labels = client.inspect_image(ref)["Config"].get("Labels") or {}
        if labels.get(BENCH_LABEL) == str(size):
            return False
    repository, tag = ref.rsplit(":", 1)
    client.import_image_from_data(
        _tar_stream("payload.bin", size),
        repository=repository,
        tag=tag,
        changes=[f"LABEL {marker}", *changes],
    )
    return True


def remove_image(client: docker.APIClient, ref: str) -> None:
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        client.remove_image(ref, force=True)


# ---- servers ----


def start_haproxy(workdir: Path, socket_path: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, socket=socket_path))
    log = workdir / "haproxy.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_http(f"http://127.0.0.1:{port}/_ping", process, log)
    return process, port


def start_berth(
    workdir: Path, docker_host: str, token: str, gunicorn_args: str
) -> tuple[subprocess.Popen, int, Path]:
    log = workdir / "berth.log"
    env = {
        "DOCKER_HOST": docker_host,
        "BERTH_DATA_DIR": str(workdir / "berth-data"),
        "BERTH_TOKENS": json.dumps([{"name": "bench", "token": token, "scopes": ["read"]}]),
    }
    for name in ("BERTH_WORKERS", "BERTH_THREADS", "BERTH_LOG_LEVEL", "BERTH_REUSE_PORT"):
        if name in os.environ:
            env[name] = os.environ[name]
    if gunicorn_args:
        env["GUNICORN_CMD_ARGS"] = gunicorn_args
    try:
        server = start_gunicorn(env, log)
    except RuntimeError as e:
        raise BenchError(f"Berth did not start: {e}") from e
    return server.process, server.port, log


# ---- CPU accounting ----

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's workers, say)."""
    found = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
                found += process_tree(int(child))
    return found


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU time of the process trees under ``roots``, now."""
    total = 0
    for pid in {p for root in roots for p in process_tree(root)}:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


def connection_split(root: int, port: int) -> list[int]:
    """Established connections on local ``port`` held by each child of ``root`` (the workers).

    Each worker has a listening socket of its own unless ``BERTH_REUSE_PORT=false``; how wrk's
    connections fell between them explains much of a run's throughput (bench/RESULTS.md).
    """
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    established.add(fields[9])  # the socket's inode
    split = []
    for pid in process_tree(root)[1:]:
        held = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    held += link.startswith("socket:[") and link[8:-1] in established
        split.append(held)
    return sorted(split, reverse=True)


def engine_pid(socket_path: str) -> int | None:
    """The dockerd serving ``socket_path`` (the peer's CPU is haproxy's plus the engine's)."""
    candidates = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and os.path.basename(argv[0]) == b"dockerd":
                candidates.append((int(entry.name), b" ".join(argv).decode(errors="replace")))
    for pid, command in candidates:
        if socket_path in command:
            return pid
    return candidates[0][0] if len(candidates) == 1 else None


# ---- load ----


def run_wrk(
    target: Target, endpoint: str, connections: int, duration: int, script: Path
) -> dict[str, Any]:
    command = ["wrk", "-t", str(min(2, connections)), "-c", str(connections)]
    command += ["-d", f"{duration}s", "-s", str(script)]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(target.base + target.paths[endpoint])
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON ") :])
    raise BenchError(f"wrk gave no summary: {out.stdout[-1000:]} {out.stderr[-1000:]}")


class SaveLoop:
    """Downloads an image archive again and again with curl until stopped.

    curl writes the archive to /dev/null and reports each download's size and time itself:
    passing the bytes through this process to count them would copy every one of them once
    more, on the CPUs wrk needs (and in wrk's scheduling group).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.stopping = threading.Event()
        self.saves = 0
        self.seconds = 0.0  # of the downloads completed, staging by the engine included
        self.received = 0  # bytes of the downloads completed
        self.failures: list[str] = []
        self.process: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def mib_per_s(self) -> float | None:
        return self.received / self.seconds / 2**20 if self.seconds else None

    def __enter__(self) -> SaveLoop:
        self.thread.start()
        time.sleep(1.0)  # let the engine start on the first archive before load starts
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
        self.thread.join(60)

    def _run(self) -> None:
        command = ["curl", "-sS", "--fail", "-o", os.devnull]
        command += ["-w", "%{size_download} %{time_total}"]
        for name, value in self.target.headers.items():
            command += ["-H", f"{name}: {value}"]
        command.append(self.target.base + self.target.save_path)
        while not self.stopping.is_set():
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.process = process
            out, error = process.communicate()
            if self.stopping.is_set():
                return
            if process.returncode == 0:
                size, seconds = out.split()
                self.saves += 1
                self.received += int(size)
                self.seconds += float(seconds)
            else:
                self.failures.append(
                    error.decode(errors="replace").strip() or f"curl exited {process.returncode}"
                )
                time.sleep(1)


def measure(
    target: Target,
    endpoint: str,
    connections: int,
    duration: int,
    script: Path,
    during_save: bool,
) -> Result:
    split: list[int] = []
    sampler = None
    if target.name == "berth" and target.process is not None:
        port = int(target.base.rsplit(":", 1)[1])
        pid = target.process.pid
        sampler = threading.Timer(
            min(2.0, duration / 2), lambda: split.extend(connection_split(pid, port))
        )
    with SaveLoop(target) if during_save else contextlib.nullcontext() as saves:
        cpu_before = cpu_seconds(target.pids)
        if sampler:
            sampler.start()
        raw = run_wrk(target, endpoint, connections, duration, script)
        cpu_used = cpu_seconds(target.pids) - cpu_before
    if sampler:
        sampler.join()
    if saves and saves.failures:
        raise BenchError(f"{target.name}: the archive download failed: {saves.failures[:3]}")
    if target.process is not None and target.process.poll() is not None:
        tail = target.log.read_text(errors="replace")[-3000:] if target.log else ""
        raise BenchError(f"{target.name} exited during the run; its log ends with:\n{tail}")
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")}
    return Result(
        target=target.name,
        endpoint=endpoint,
        connections=connections,
        during_save=during_save,
        requests_per_s=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=sum(errors.values()),
        error_detail=errors,
        saves=saves.saves if saves else 0,
        save_mib_per_s=saves.mib_per_s if saves else None,
        cpu_us_per_request=cpu_used / raw["requests"] * 1e6 if raw["requests"] else None,
        load_average=os.getloadavg()[0],
        worker_connections=split,
    )


# ---- report ----


def machine(client: docker.APIClient) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    version = client.version()

    def first_line(command: list[str]) -> str:
        out = subprocess.run(command, capture_output=True, text=True)
        return ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_mib": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "engine": f"{version.get('Version')} (API {version.get('ApiVersion')})",
        "haproxy": first_line(["haproxy", "-v"]),
        "wrk": first_line(["wrk", "-v"]),
    }


def _cells(result: Result | None) -> str:
    if result is None:
        return f"{'-':>8} {'-':>7} {'-':>7} {'-':>4} {'-':>6}"
    cpu = f"{result.cpu_us_per_request:>6.0f}" if result.cpu_us_per_request else f"{'-':>6}"
    return (
        f"{result.requests_per_s:>8.0f} {result.p50_ms:>7.1f} {result.p99_ms:>7.1f} "
        f"{result.errors:>4} {cpu}"
    )


def print_report(results: list[Result], info: dict[str, Any], settings: dict[str, Any]) -> bool:
    """The table, the save rates and the targets; whether every target was met."""
    print("\nMachine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print("Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    print(
        "Latencies in ms; cpu = CPU microseconds per request of the server's processes "
        "(peer: haproxy + dockerd; Berth: gunicorn), the save's share included."
    )
    columns = f"{'req/s':>8} {'p50':>7} {'p99':>7} {'err':>4} {'cpu':>6}"
    header = f"{'scenario':<26} | peer {columns} | Berth {columns} | ratio | load"
    print("\n" + header + "\n" + "-" * len(header))
    by_key = {(r.target, r.endpoint, r.connections, r.during_save): r for r in results}
    save = f"+{settings['save_mib']}MiB save"
    for (target, endpoint, connections, during_save), berth in by_key.items():
        if target != "berth":
            continue
        peer = by_key.get(("peer", endpoint, connections, during_save))
        scenario = f"{endpoint} c{connections}" + (f" {save}" if during_save else "")
        ratio = f"{berth.requests_per_s / peer.requests_per_s:>5.2f}" if peer else f"{'-':>5}"
        print(
            f"{scenario:<26} |      {_cells(peer)} |       {_cells(berth)} | {ratio} | "
            f"{berth.load_average:.1f}"
        )
    for name in ("peer", "berth"):
        rates = [r.save_mib_per_s for r in results if r.target == name and r.save_mib_per_s]
        if rates:
            print(
                f"Archive download rate through {name} while under load: "
                f"mean {sum(rates) / len(rates):.0f} MiB/s over {len(rates)} runs"
            )

    print("\nTargets:")
    ok = True
    errors = sum(r.errors for r in results)
    ok &= _check("zero errors (every run, both servers)", errors == 0, f"{errors} errors")
    berth16 = by_key.get(("berth", "inspect", 16, False))
    peer16 = by_key.get(("peer", "inspect", 16, False))
    if berth16 and peer16:
        ratio = berth16.requests_per_s / peer16.requests_per_s
        ok &= _check("inspect c16 >= 0.5x the peer", ratio >= 0.5, f"{ratio:.2f}x")
    for connections in sorted({r.connections for r in results}):
        loaded = by_key.get(("berth", "inspect", connections, True))
        if loaded:
            ok &= _check(
                f"p99 inspect c{connections} <= 50 ms while the save streams",
                loaded.p99_ms <= 50,
                f"{loaded.p99_ms:.1f} ms",
            )
    return ok


def _check(what: str, passed: bool, figure: str) -> bool:
    print(f"  [{'PASS' if passed else 'FAIL'}] {what}: {figure}")
    return passed


# ---- main ----


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds per run (max 300)")
    parser.add_argument("--connections", default="16,64", help="comma-separated, e.g. 16,64")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="inspect,list,history")
    parser.add_argument("--no-save", action="store_true", help="skip the runs under a 1 GiB save")
    parser.add_argument("--only-save", action="store_true", help="only the runs under the save")
    parser.add_argument("--save-mib", type=int, default=1024, help="size of the saved image")
    parser.add_argument("--targets", default="peer,berth", help="peer,berth")
    parser.add_argument(
        "--gunicorn-args", default="", help="extra gunicorn settings (GUNICORN_CMD_ARGS)"
    )
    parser.add_argument("--keep-images", action="store_true", help="keep the images for next time")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be 1..{MAX_DURATION}")
    args.connections = [int(c) for c in args.connections.split(",") if c.strip()]
    if not args.connections or any(not 1 <= c <= 1024 for c in args.connections):
        parser.error("--connections: counts between 1 and 1024")
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if not args.endpoints or set(args.endpoints) - set(ENDPOINTS):
        parser.error(f"--endpoints: choose among {', '.join(ENDPOINTS)}")
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not args.targets or set(args.targets) - {"peer", "berth"}:
        parser.error("--targets: peer, berth or both")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_tools()
    socket_path = engine_socket()
    docker_host = f"unix://{socket_path}"
    client = docker.APIClient(base_url=docker_host, version="auto", timeout=600)
    save_modes = [False, True]
    if args.no_save:
        save_modes = [False]
    if args.only_save:
        save_modes = [True]
    runs = len(save_modes) * len(args.endpoints) * len(args.connections) * len(args.targets)
    print(
        f"{runs} runs of {args.duration} s (about {runs * (args.duration + 4) // 60 + 1} min, "
        "plus image set-up)",
        flush=True,
    )

    workdir = Path(tempfile.mkdtemp(prefix="berth-load-"))
    created: list[str] = []
    processes: list[subprocess.Popen] = []
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        if ensure_image(
            client, META_IMAGE, 4096, ["ENV APP=bench", 'CMD ["/payload.bin"]', "WORKDIR /srv"]
        ):
            created.append(META_IMAGE)
        if True in save_modes:
            print(f"preparing a {args.save_mib} MiB image to save...", flush=True)
            if ensure_image(client, BIG_IMAGE, args.save_mib << 20, []):
                created.append(BIG_IMAGE)
        api = "v" + client.api_version
        token = "bench-" + secrets.token_urlsafe(24)
        targets: list[Target] = []
        if "peer" in args.targets:
            haproxy, peer_port = start_haproxy(workdir, socket_path)
            processes.append(haproxy)
            base = f"http://127.0.0.1:{peer_port}"
            targets.append(
                Target(
                    "peer",
                    base,
                    {
                        "inspect": f"/{api}/images/{META_IMAGE}/json",
                        "list": f"/{api}/images/json",
                        "history": f"/{api}/images/{META_IMAGE}/history",
                    },
                    f"/{api}/images/{BIG_IMAGE}/get",
                    pids=[haproxy.pid, *filter(None, [engine_pid(socket_path)])],
                    process=haproxy,
                    log=workdir / "haproxy.log",
                )
            )
        if "berth" in args.targets:
            gunicorn, berth_port, berth_log = start_berth(
                workdir, docker_host, token, args.gunicorn_args
            )
            processes.append(gunicorn)
            targets.append(
                Target(
                    "berth",
                    f"http://127.0.0.1:{berth_port}",
                    {
                        "inspect": f"/v1/images/{META_IMAGE}",
                        "list": "/v1/images",
                        "history": f"/v1/images/{META_IMAGE}/history",
                    },
                    f"/v1/images/{BIG_IMAGE}/archive",
                    {"Authorization": f"Bearer {token}"},
                    pids=[gunicorn.pid],
                    process=gunicorn,
                    log=berth_log,
                )
            )
        script = workdir / "report.lua"
        script.write_text(WRK_SCRIPT)
        for target in targets:  # warm up: connections, workers, caches
            for endpoint in args.endpoints:
                run_wrk(target, endpoint, max(args.connections), 2, script)

        results: list[Result] = []
        for during_save in save_modes:
            for endpoint in args.endpoints:
                for connections in args.connections:
                    for target in targets:  # the peer and Berth back to back, same conditions
                        result = measure(
                            target, endpoint, connections, args.duration, script, during_save
                        )
                        results.append(result)
                        print(
                            f"  {target.name:<5} {endpoint:<7} c{connections:<3}"
                            f"{' +save' if during_save else '      '} "
                            f"{result.requests_per_s:8.0f} req/s  p50 {result.p50_ms:6.1f} ms  "
                            f"p99 {result.p99_ms:6.1f} ms  errors {result.errors}  "
                            f"load {result.load_average:.1f}"
                            + (
                                "  workers " + "/".join(map(str, result.worker_connections))
                                if result.worker_connections
                                else ""
                            ),
                            flush=True,
                        )
        settings = {
            "duration_s": args.duration,
            "gunicorn": args.gunicorn_args or "gunicorn.conf.py defaults",
            "save_mib": args.save_mib,
        }
        ok = print_report(results, machine(client), settings)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "machine": machine(client),
                        "settings": settings,
                        "results": [r.__dict__ for r in results],
                    },
                    indent=2,
                )
            )
        return 0 if ok else 1
    except BenchError as e:
        print(f"load.py: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in reversed(processes):
            stop_process(process)
        if not args.keep_images:
            for ref in created:
                remove_image(client, ref)
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"load.py: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
