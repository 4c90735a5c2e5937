#!/usr/bin/env python3
"""Archive benchmark: ``docker save`` and ``docker load`` through Berth, beside the engine itself.

Run by hand, from the repository root, with the project's Python, against an engine you own
(the test harness's is the intended one: nothing here touches any other engine or the network
beyond 127.0.0.1):

    dir=$(mktemp -d); python3 scripts/harness.py start --dir "$dir"
    BERTH_TEST_HARNESS=$dir/harness.json python bench/archives.py --sizes 1024,2048
    python3 scripts/harness.py stop --dir "$dir"

(or ``DOCKER_HOST=unix:///path/docker.sock python bench/archives.py --base-image busybox``).

For each size it builds an image holding one file of random data (incompressible, so no layer
of the pipeline can cheat), saves its archive to a file once, then measures in the same run,
interleaved (each run rotates the order, with ``sync`` before every measurement):

* **save** (``GET /images/{ref}/get``, the archive written to /dev/null): docker-py on the
  engine socket (``APIClient.get_image``), the ``docker`` CLI (``docker save``), and Berth under
  gunicorn over loopback (``curl -o /dev/null .../v1/images/{ref}/archive``);
* **load** (the image removed before each run, the archive read from the file): docker-py
  (``APIClient.load_image`` with the open file), ``docker load -i``, and Berth
  (``curl -T file -X POST .../v1/archives``; ``curl --data-binary @file`` would first read the
  whole file into curl's memory).

Through each Berth, the ``docker`` CLI also runs ``docker save``/``docker load -i`` pointed at
its Engine-API front door (``DOCKER_HOST=tcp://.../engines/local``, the token in a config.json
of its own), and ``docker images`` is timed on the socket and through the front door (median).

With ``--reference-relay`` (haproxy, an engine on a unix socket), beside them a reference for
what any second hop costs: curl to the engine's own API through haproxy passing TCP on loopback
to the engine's socket (``mode tcp``, ``splice(2)`` through 1 MiB pipes like Berth's relay; C,
no HTTP handling). It checks only the first request line of each connection, so use it on a
machine nobody else uses during the run.

It prints MB/s (median of ``--runs``, with min and max), the ratio Berth/direct (and
reference/direct) against both direct clients, and the Berth worker's resident memory: sampled
every 20 ms during each transfer, and its high-water mark (``VmHWM``) at the end.
``--worker-classes`` and ``--chunk-sizes`` start one Berth per combination (all measured side by
side), which is how the defaults were chosen. The images and archive files are removed at the
end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run by hand as bench/archives.py
    sys.path.insert(0, str(ROOT))
from scripts.berth_server import (  # noqa: E402
    free_port,
    start_gunicorn,
    stop_process,
    wait_until_serving,
)

REPOSITORY = "berth-bench/archive"
MIB = 1024 * 1024
RELAY_NAME = "reference: haproxy TCP relay"
STEP_TIMEOUT = 900  # seconds; no single save or load of the sizes allowed here takes longer
MAX_SIZE_MIB = 8192


def berth_app():
    """gunicorn's entry point for the benchmark: Berth with the chunk sizes under test.

    ``gunicorn 'bench.archives:berth_app()'``; BENCH_CHUNK_BYTES sets the download and upload
    chunk sizes (Berth's own defaults otherwise).
    """
    import app.engine.archives as engine_archives
    import app.http.uploads as uploads
    from app import create_app

    chunk = os.environ.get("BENCH_CHUNK_BYTES")
    if chunk:
        engine_archives.DOWNLOAD_CHUNK_BYTES = int(chunk)
        uploads.UPLOAD_CHUNK_BYTES = int(chunk)
    return create_app()


# Setup


@dataclass
class Target:
    docker_host: str
    docker_cli: str
    docker_config: str
    base_image: str

    def cli_env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DOCKER_HOST": self.docker_host,
            "DOCKER_CONFIG": self.docker_config,
        }


def find_target(args: argparse.Namespace, workdir: Path) -> Target:
    harness_file = args.harness or os.environ.get("BERTH_TEST_HARNESS")
    if harness_file:
        state = json.loads(Path(harness_file).read_text())
        return Target(
            state["docker_host"],
            state.get("docker_cli") or shutil.which("docker") or "docker",
            state.get("docker_config") or str(workdir / "docker-config"),
            args.base_image or state["base_image"],
        )
    host = os.environ.get("DOCKER_HOST")
    if not host:
        sys.exit("Give --harness (or BERTH_TEST_HARNESS) or DOCKER_HOST: the engine to measure.")
    if not args.base_image:
        sys.exit("Without a harness, name a local image with `head` in it: --base-image IMAGE.")
    return Target(
        host, shutil.which("docker") or "docker", str(workdir / "docker-config"), args.base_image
    )


def build_image(api: docker.APIClient, base: str, size_mib: int) -> tuple[str, str]:
    """An image whose one layer is a file of ``size_mib`` MiB of random data."""
    ref = f"{REPOSITORY}:{size_mib}m"
    container = api.create_container(
        base,
        ["sh", "-c", f"head -c {size_mib}m /dev/urandom > /random.bin"],
        host_config=api.create_host_config(network_mode="none"),
    )
    try:
        api.start(container)
        status = api.wait(container, timeout=STEP_TIMEOUT)["StatusCode"]
        if status != 0:
            raise RuntimeError(f"building the {size_mib} MiB image failed ({status})")
        image_id = api.commit(container, repository=REPOSITORY, tag=f"{size_mib}m")["Id"]
    finally:
        api.remove_container(container, force=True)
    return ref, image_id


@dataclass
class Berth:
    name: str
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []


@contextmanager
def berth_server(
    target: Target, workdir: Path, worker_class: str, chunk: int | None
) -> Iterator[Berth]:
    port = free_port()
    token = secrets.token_hex(24)
    name = f"{worker_class}" + (f", {format_size(chunk)} chunks" if chunk else "")
    data = workdir / f"berth-{port}"
    data.mkdir()
    env = {
        "DOCKER_HOST": target.docker_host,
        "BERTH_DATA_DIR": str(data),
        "BERTH_TOKENS": json.dumps([{"name": "bench", "token": token, "scopes": ["admin"]}]),
    }
    if chunk:
        env["BENCH_CHUNK_BYTES"] = str(chunk)
    # "berth": gunicorn.conf.py's own class (app.server.worker)
    worker = () if worker_class == "berth" else ("-k", worker_class)
    log = data / "gunicorn.log"
    gunicorn = start_gunicorn(
        env, log, port=port, app="bench.archives:berth_app()", args=worker, ready_path="/v1/ready"
    )
    try:
        yield Berth(name, gunicorn.url, token, gunicorn.process, log)
    finally:
        gunicorn.stop()


HAPROXY_RELAY = """\
global
    maxconn 16
    tune.pipesize 1048576
defaults
    mode tcp
    timeout connect 10s
    timeout client 15m
    timeout server 15m
listen engine
    bind 127.0.0.1:{port}
    option splice-auto
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.payload(0,0) -m reg "{allowed}" }}
    tcp-request content reject
    server engine unix@{socket}
"""
# The only requests the relay lets through (its first request line; see haproxy_relay).
RELAY_ALLOWED = (
    r"^(GET /_ping|GET /images/" + REPOSITORY + r":[0-9]+m/get|POST /images/load\?quiet=1)"
    r" HTTP/1\.1\r\n"
)


@contextmanager
def haproxy_relay(target: Target, workdir: Path) -> Iterator[str]:
    """The reference second hop: haproxy passing TCP on loopback to the engine's socket with
    ``splice(2)``, C and no HTTP; its URL.

    A TCP relay sees no requests, only bytes: it checks that a connection starts with one of the
    benchmark's own requests (``RELAY_ALLOWED``), but a client could pipeline others behind it,
    hence ``--reference-relay`` is opt-in, for a machine nobody else uses during the run.
    """
    if not shutil.which("haproxy"):
        sys.exit("--reference-relay needs haproxy (Debian: apt-get install haproxy)")
    if not target.docker_host.startswith("unix://"):
        sys.exit("--reference-relay needs the engine on a unix socket")
    port = free_port()
    config = workdir / "haproxy-relay.cfg"
    socket_path = target.docker_host[len("unix://") :]
    config.write_text(HAPROXY_RELAY.format(port=port, socket=socket_path, allowed=RELAY_ALLOWED))
    log = workdir / "haproxy-relay.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url + "/_ping", process, log)
        yield url
    finally:
        stop_process(process)


# Measuring


def status_kib(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """The largest VmRSS any of ``pids`` reaches while the block runs (sampled every 20 ms)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.peak_kib = max(self.peak_kib, status_kib(pid, "VmRSS"))
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Method:
    name: str
    run: Callable[[], None]
    berth: Berth | None = None
    relay: bool = False  # the reference relay: neither direct nor Berth
    seconds: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_checked(command: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(command, env=env, capture_output=True, timeout=STEP_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr.decode(errors='replace')[-500:]}")
    return result.stdout.decode(errors="replace")


def curl(args: list[str], token: str | None, expect: int, what: str) -> str:
    """Run curl with ``args`` (and the bearer ``token``); its body, the status checked."""
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    out = run_checked(
        ["curl", "-sS", *auth, "-w", "\n%{http_code}", *args],
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        what,
    )
    body, _, status = out.rpartition("\n")
    if int(status) != expect:
        raise RuntimeError(f"{what}: HTTP {status} {body[-500:]}")
    return body


def engine_api_env(target: Target, berth: Berth) -> dict[str, str]:
    """The docker CLI's environment for Berth's Engine-API front door (``/engines/local``), with
    a config directory of its own whose ``HttpHeaders`` carry the token."""
    config = berth.log.parent / "docker-config"
    config.mkdir(exist_ok=True)
    headers = {"HttpHeaders": {"Authorization": f"Bearer {berth.token}"}}
    (config / "config.json").write_text(json.dumps(headers))
    host = berth.url.replace("http://", "tcp://") + "/engines/local"
    return {**target.cli_env(), "DOCKER_HOST": host, "DOCKER_CONFIG": str(config)}


def images_latency(target: Target, servers: list[Berth], runs: int) -> dict[str, float]:
    """Median seconds of ``docker images`` on the socket and through each Berth's front door."""
    envs = {"engine, docker CLI": target.cli_env()}
    envs.update({f"Berth ({s.name}), docker CLI": engine_api_env(target, s) for s in servers})
    seconds: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(runs):
        for name, env in envs.items():
            started = time.perf_counter()
            run_checked([target.docker_cli, "images"], env, "docker images")
            seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    direct = medians["engine, docker CLI"]
    print(f"docker images, median of {runs}:")
    for name, value in medians.items():
        print(f"  {name}: {value * 1000:.1f} ms ({value / direct:.2f}x direct)")
    return medians


def save_methods(
    api, target: Target, servers: list[Berth], relay: str | None, ref: str, size: int
) -> list[Method]:
    def docker_py() -> None:
        received = sum(len(c) for c in api.get_image(ref, chunk_size=MIB))
        assert received == size, (received, size)

    def cli() -> None:
        with open(os.devnull, "wb") as sink:
            subprocess.run(
                [target.docker_cli, "save", ref],
                stdout=sink,
                env=target.cli_env(),
                check=True,
                timeout=STEP_TIMEOUT,
            )

    def through(berth: Berth) -> Callable[[], None]:
        url = f"{berth.url}/v1/images/{ref}/archive"
        return lambda: curl(["-o", os.devnull, url], berth.token, 200, "save through Berth")

    def relayed() -> None:
        curl(["-o", os.devnull, f"{relay}/images/{ref}/get"], None, 200, "save through haproxy")

    def cli_through(berth: Berth) -> Callable[[], None]:
        env = engine_api_env(target, berth)

        def run() -> None:
            with open(os.devnull, "wb") as sink:
                command = [target.docker_cli, "save", ref]
                subprocess.run(command, stdout=sink, env=env, check=True, timeout=STEP_TIMEOUT)

        return run

    methods = [Method("engine, docker-py", docker_py), Method("engine, docker CLI", cli)]
    if relay:
        methods.append(Method(RELAY_NAME + ", curl", relayed, relay=True))
    methods += [Method(f"Berth ({s.name}), curl", through(s), s) for s in servers]
    return methods + [Method(f"Berth ({s.name}), docker CLI", cli_through(s), s) for s in servers]


def load_methods(
    api, target: Target, servers: list[Berth], relay: str | None, archive: Path
) -> list[Method]:
    def docker_py() -> None:
        with open(archive, "rb") as body:
            for event in api.load_image(body, quiet=True):
                if "error" in event:
                    raise RuntimeError(event["error"])

    def cli() -> None:
        run_checked(
            [target.docker_cli, "load", "-q", "-i", str(archive)], target.cli_env(), "docker load"
        )

    def through(berth: Berth) -> Callable[[], None]:
        url = f"{berth.url}/v1/archives"
        args = ["-T", str(archive), "-X", "POST", "-H", "Content-Type: application/x-tar", url]
        return lambda: curl(args, berth.token, 201, "load through Berth")

    def relayed() -> None:
        url = f"{relay}/images/load?quiet=1"
        args = ["-T", str(archive), "-X", "POST", "-H", "Content-Type: application/x-tar", url]
        body = curl(args, None, 200, "load through haproxy")
        if '"error' in body:  # the engine reports a failed load inside its 200 stream
            raise RuntimeError(f"load through haproxy: {body[-500:]}")

    def cli_through(berth: Berth) -> Callable[[], None]:
        env = engine_api_env(target, berth)
        command = [target.docker_cli, "load", "-q", "-i", str(archive)]
        return lambda: run_checked(command, env, "docker load through Berth")

    methods = [Method("engine, docker-py", docker_py), Method("engine, docker CLI", cli)]
    if relay:
        methods.append(Method(RELAY_NAME + ", curl -T", relayed, relay=True))
    methods += [Method(f"Berth ({s.name}), curl -T", through(s), s) for s in servers]
    return methods + [Method(f"Berth ({s.name}), docker CLI", cli_through(s), s) for s in servers]


def measure(methods: list[Method], runs: int, before: Callable[[], None]) -> None:
    for run in range(runs):
        order = methods[run % len(methods) :] + methods[: run % len(methods)]
        for method in order:
            before()
            os.sync()
            workers = method.berth.workers() if method.berth else []
            sampler = RssSampler(workers)
            cpu_before = cpu_seconds(workers)
            with sampler:
                started = time.perf_counter()
                method.run()
                method.seconds.append(time.perf_counter() - started)
            note = ""
            if method.berth:
                method.rss_kib.append(sampler.peak_kib)
                method.cpu_seconds.append(cpu_seconds(workers) - cpu_before)
                note = f" (worker CPU {method.cpu_seconds[-1]:.2f} s)"
            print(f"    run {run + 1}: {method.name}: {method.seconds[-1]:.2f} s{note}", flush=True)


# Reporting


def format_size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // 1024} KiB"


def rate(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def report(phase: str, methods: list[Method], size: int) -> list[dict]:
    """Print and return one phase's figures.

    Ratios are Berth/direct throughput: of the medians, and the median of the ratios within
    each round (each round measures every method once, back to back, so a machine whose speed
    drifts during the run skews the second figure less).
    """
    direct = {
        m.name: statistics.median(m.seconds) for m in methods if m.berth is None and not m.relay
    }
    direct_runs = {m.name: m.seconds for m in methods if m.berth is None and not m.relay}
    rows = []
    print(
        f"  {phase}: median MB/s [min-max] over {len(methods[0].seconds)} runs; Berth/direct: "
        "ratio of medians (median of per-round ratios)"
    )
    for method in methods:
        median = statistics.median(method.seconds)
        line = (
            f"    {method.name:44s} {rate(size, median):7.1f}"
            f"  [{rate(size, max(method.seconds)):.1f}-{rate(size, min(method.seconds)):.1f}]"
        )
        row = {
            "phase": phase,
            "method": method.name,
            "mb_s": round(rate(size, median), 1),
            "runs_s": [round(s, 3) for s in method.seconds],
        }
        if method.berth or method.relay:
            ratios = {name: seconds / median for name, seconds in direct.items()}
            paired = {
                name: statistics.median(d / b for d, b in zip(runs, method.seconds, strict=True))
                for name, runs in direct_runs.items()
            }
            line += "  ratio " + ", ".join(
                f"{r:.2f} ({paired[n]:.2f}) vs {n.split(', ')[1]}" for n, r in ratios.items()
            )
            row["ratios"] = {n: round(r, 3) for n, r in ratios.items()}
            row["paired_ratios"] = {n: round(r, 3) for n, r in paired.items()}
        if method.berth:
            peak = max(method.rss_kib) / 1024
            cpu = statistics.median(method.cpu_seconds) / (size / 2**30)
            line += f"  worker RSS peak {peak:.1f} MiB, CPU {cpu:.2f} s/GiB"
            row.update({"rss_peak_mib": round(peak, 1), "cpu_s_per_gib": round(cpu, 2)})
        print(line)
        rows.append(row)
    return rows


def machine(api: docker.APIClient) -> dict:
    info = api.info()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(info.get("MemTotal", 0) / 2**30, 1),
        "kernel": platform.release(),
        "engine": info.get("ServerVersion"),
        "storage_driver": info.get("Driver"),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--harness", help="harness.json (default: $BERTH_TEST_HARNESS)")
    parser.add_argument("--base-image", help="image with sh and head (default: the harness's)")
    parser.add_argument("--sizes", default="1024", help="image sizes in MiB, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="measurements per method (1-9)")
    parser.add_argument(
        "--worker-classes", default="berth", help="berth (gunicorn.conf.py's), gthread, sync..."
    )
    parser.add_argument("--chunk-sizes", default="", help="Berth chunk sizes in KiB, e.g. 64,1024")
    parser.add_argument(
        "--reference-relay",
        action="store_true",
        help="also measure haproxy relaying TCP to the engine socket (opens a loopback port)",
    )
    parser.add_argument("--workdir", help="where archives are written (default: system temp)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if not sizes or any(not 1 <= s <= MAX_SIZE_MIB for s in sizes) or not 1 <= args.runs <= 9:
        sys.exit(f"--sizes must be 1..{MAX_SIZE_MIB} MiB each, --runs 1..9")
    if not shutil.which("curl"):
        sys.exit("curl is needed (it is the client measured against Berth)")
    chunks = [int(c) * 1024 for c in args.chunk_sizes.split(",") if c] or [None]
    classes = [c for c in args.worker_classes.split(",") if c]

    workdir = Path(tempfile.mkdtemp(prefix="berth-bench-", dir=args.workdir))
    target = find_target(args, workdir)
    Path(target.docker_config).mkdir(parents=True, exist_ok=True)
    api = docker.APIClient(base_url=target.docker_host, version="auto", timeout=STEP_TIMEOUT)
    results: dict = {"machine": machine(api), "sizes": []}
    print("machine:", json.dumps(results["machine"]))
    made: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(berth_server(target, workdir, worker_class, chunk))
                for worker_class in classes
                for chunk in chunks
            ]
            relay = (
                stack.enter_context(haproxy_relay(target, workdir))
                if args.reference_relay
                else None
            )
            idle = {s.name: max(status_kib(p, "VmRSS") for p in s.workers()) for s in servers}
            results["images_latency"] = images_latency(target, servers, max(args.runs, 1) * 10)
            for size_mib in sizes:
                print(f"\n{size_mib} MiB image: building", flush=True)
                ref, image_id = build_image(api, target.base_image, size_mib)
                made.append(image_id)
                archive = workdir / f"{size_mib}.tar"
                with open(archive, "wb") as out:
                    for chunk in api.get_image(ref, chunk_size=MIB):
                        out.write(chunk)
                size = archive.stat().st_size
                print(f"  archive {size / 1e6:.0f} MB; save:", flush=True)
                saves = save_methods(api, target, servers, relay, ref, size)
                measure(saves, args.runs, lambda: None)

                def remove(image_id=image_id) -> None:
                    try:
                        api.remove_image(image_id, force=True)
                    except docker.errors.NotFound:
                        pass

                print("  load:", flush=True)
                loads = load_methods(api, target, servers, relay, archive)
                measure(loads, args.runs, remove)
                if api.inspect_image(ref)["Id"] != image_id:
                    raise RuntimeError("the loaded image is not the saved one")
                print()
                rows = report("save", saves, size) + report("load", loads, size)
                results["sizes"].append({"mib": size_mib, "archive_bytes": size, "rows": rows})
                archive.unlink()
            print("\nBerth workers' resident memory (MiB): idle, then high-water mark (VmHWM):")
            for s in servers:
                hwm = max(status_kib(p, "VmHWM") for p in s.workers()) / 1024
                print(f"  {s.name}: idle {idle[s.name] / 1024:.1f}, VmHWM {hwm:.1f}")
                results.setdefault("rss", {})[s.name] = {
                    "idle_mib": round(idle[s.name] / 1024, 1),
                    "vmhwm_mib": round(hwm, 1),
                }
    finally:
        for image_id in made:
            try:
                api.remove_image(image_id, force=True)
            except docker.errors.APIError:
                pass
        api.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
