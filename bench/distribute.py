#!/usr/bin/env python3
"""Distribution benchmark: one image to several engines, Berth against the docker CLI by hand.

Run by hand, from the repository root, with the project's Python, against a harness with three
fleet engines (nothing here touches any other engine, or the network beyond 127.0.0.1):

    dir=$(mktemp -d); python3 scripts/harness.py start --dir "$dir" --engines 3
    BERTH_TEST_HARNESS=$dir/harness.json python bench/distribute.py
    python3 scripts/harness.py stop --dir "$dir"

Each measurement starts from the same state: a *fresh* image of ``--size-mib`` MiB of random
data (incompressible, and new to the registry, so every push really uploads it) on the harness
engine, and target engines that do not have it. Measured, in the same run, in alternating order
(``sync`` before each):

* **Berth, via registry**: ``POST /v1/distributions`` (to all three, via the harness's open
  registry) to Berth under gunicorn, then ``GET /v1/distributions/{id}`` every 0.2 s until it
  ends. Berth pushes once, then pulls on the targets in parallel (BERTH_DISTRIBUTION_PARALLELISM).
* **By hand**: ``docker push`` from the source, then ``docker -H <engine> pull`` on each target,
  one after another (the docker CLI, ``--quiet``).
* **Berth, as a stream** (``--no-stream`` leaves it out): the same POST with ``"via": "stream"``
  (the source's ``docker save`` fed into ``docker load`` on each target); the gunicorn workers'
  resident memory is sampled meanwhile, to show that no archive is held in memory.

Each result is checked: every target must report the source's image id. It prints every run's
seconds, the medians, and the ratio (by hand / Berth). Images are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run by hand as bench/distribute.py
    sys.path.insert(0, str(ROOT))
from scripts.berth_server import start_gunicorn  # noqa: E402

REPOSITORY = "berth-bench/distribute"
STEP_TIMEOUT = 900
CHUNK = 1024 * 1024


@dataclass
class Harness:
    source: str
    targets: dict[str, str]
    registry: str
    cli: str
    docker_config: str


def load_harness(engines: int) -> Harness:
    path = os.environ.get("BERTH_TEST_HARNESS")
    if not path or not Path(path).exists():
        sys.exit("set BERTH_TEST_HARNESS to a harness.json (scripts/harness.py start --engines 3)")
    state = json.loads(Path(path).read_text())
    fleet = state.get("engines") or {}
    names = sorted(fleet)[:engines]
    if len(names) < engines:
        sys.exit(f"the harness has {len(fleet)} fleet engines; start it with --engines {engines}")
    return Harness(
        source=state["docker_host"],
        targets={name: fleet[name]["docker_host"] for name in names},
        registry=state["registries"]["open"]["address"],
        cli=state["docker_cli"],
        docker_config=state["docker_config"],
    )


# --------------------------------------------------------------------------- images


def build_image(client: docker.DockerClient, size_mib: int) -> tuple[str, str]:
    """A new image holding ``size_mib`` MiB of random data; ``(id, reference)``."""
    base = os.environ.get("BENCH_BASE_IMAGE", "berth-test/busybox:latest")
    command = f"dd if=/dev/urandom of=/blob bs=1M count={size_mib} 2>/dev/null"
    container = client.containers.create(base, ["sh", "-c", command], network_mode="none")
    try:
        container.start()
        container.wait(timeout=STEP_TIMEOUT)
        tag = uuid.uuid4().hex[:10]
        image = container.commit(repository=REPOSITORY, tag=tag)
    finally:
        container.remove(force=True)
    return image.id, f"{REPOSITORY}:{tag}"


def remove_everywhere(clients: list[docker.DockerClient], image_id: str) -> None:
    for client in clients:
        try:
            client.api.remove_image(image_id, force=True)
        except docker.errors.APIError:
            pass


def check_targets(targets: dict[str, docker.DockerClient], image_id: str, ref: str) -> None:
    for name, client in targets.items():
        found = client.images.get(ref).id
        if found != image_id:
            raise RuntimeError(f"{name} has {found} as {ref}, not {image_id}")


# --------------------------------------------------------------------------- Berth


@dataclass
class Berth:
    url: str
    token: str
    process: subprocess.Popen

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []


@contextmanager
def berth_server(harness: Harness, workdir: Path) -> Iterator[Berth]:
    token = secrets.token_hex(24)
    engines = {"local": harness.source, **harness.targets}
    env = {
        "BERTH_DATA_DIR": str(workdir / "berth"),
        "BERTH_ENGINES": json.dumps(engines),
        "BERTH_ALLOWED_REGISTRIES": harness.registry,  # a loopback registry: listed explicitly
        "BERTH_TOKENS": json.dumps([{"name": "bench", "token": token, "scopes": ["admin"]}]),
        "BERTH_LOG_LEVEL": "WARNING",
    }
    gunicorn = start_gunicorn(env, workdir / "gunicorn.log", ready_path="/v1/ready")
    try:
        yield Berth(gunicorn.url, token, gunicorn.process)
    finally:
        gunicorn.stop()


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    """Peak total resident memory of Berth's workers, sampled every 20 ms."""

    def __init__(self, berth: Berth) -> None:
        self.berth = berth
        self.baseline = sum(rss_kib(p) for p in berth.worker_pids())
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(rss_kib(p) for p in self.berth.worker_pids()))
            time.sleep(0.02)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def berth_distribute(berth: Berth, ref: str, via: object, targets: list[str]) -> dict:
    response = requests.post(
        berth.url + "/v1/distributions",
        json={"image": ref, "target_engines": targets, "via": via},
        headers=berth.headers,
        timeout=60,
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST /v1/distributions: {response.status_code} {response.text}")
    location = berth.url + response.headers["Location"]
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        document = requests.get(location, headers=berth.headers, timeout=30).json()
        if document["state"] not in ("queued", "running"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the distribution did not end in time")
        time.sleep(0.2)
    if document["state"] != "succeeded":
        raise RuntimeError(f"the distribution {document['state']}: {document['error']}")
    return document


# --------------------------------------------------------------------------- by hand


def docker_cli(harness: Harness, host: str, *args: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_CONFIG": harness.docker_config}
    subprocess.run(
        [harness.cli, "-H", host, *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=STEP_TIMEOUT,
    )


def by_hand(harness: Harness, ref: str, remote: str) -> dict[str, float]:
    """``docker tag`` + ``docker push`` on the source, then ``docker pull`` on each target;
    the seconds each step took."""
    steps = {}
    started = time.perf_counter()
    docker_cli(harness, harness.source, "tag", ref, remote)
    docker_cli(harness, harness.source, "push", "--quiet", remote)
    steps["push"] = time.perf_counter() - started
    for name, host in harness.targets.items():
        started = time.perf_counter()
        docker_cli(harness, host, "pull", "--quiet", remote)
        docker_cli(harness, host, "tag", remote, ref)
        steps[name] = time.perf_counter() - started
    return steps


# --------------------------------------------------------------------------- stream fan-out


def _load(api: docker.APIClient, chunks: Iterator[bytes]) -> None:
    for event in api.load_image(chunks):
        if event.get("error") or event.get("errorDetail"):
            raise RuntimeError(f"load failed: {event}")


def save_per_target(source: docker.APIClient, targets: list[docker.APIClient], ref: str) -> None:
    """Each target loads from a ``docker save`` of its own, all at once."""
    threads = [
        threading.Thread(target=_load, args=(t, source.get_image(ref, chunk_size=CHUNK)))
        for t in targets
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def save_teed(source: docker.APIClient, targets: list[docker.APIClient], ref: str) -> None:
    """One ``docker save``, each chunk handed to every target's load through a bounded queue."""
    queues: list[queue.Queue] = [queue.Queue(maxsize=4) for _ in targets]

    def drain(q: queue.Queue) -> Iterator[bytes]:
        while (chunk := q.get()) is not None:
            yield chunk

    threads = [
        threading.Thread(target=_load, args=(t, drain(q)))
        for t, q in zip(targets, queues, strict=True)
    ]
    for thread in threads:
        thread.start()
    for chunk in source.get_image(ref, chunk_size=CHUNK):
        for q in queues:
            q.put(chunk)
    for q in queues:
        q.put(None)
    for thread in threads:
        thread.join()


def fanout_check(harness: Harness, size_mib: int, runs: int) -> None:
    """How a stream distribution should fan out, measured on the engines directly (docker-py):
    one save per target against one save teed to every target."""
    source = docker.DockerClient(base_url=harness.source, timeout=STEP_TIMEOUT)
    apis = [docker.APIClient(base_url=h, timeout=STEP_TIMEOUT) for h in harness.targets.values()]
    image_id, ref = build_image(source, size_mib)
    times: dict[str, list[float]] = {"one save per target": [], "one save, teed": []}
    print(f"stream fan-out, {size_mib} MiB to {len(apis)} engines, {runs} runs (docker-py)")
    try:
        for run in range(runs):
            ways = [("one save per target", save_per_target), ("one save, teed", save_teed)]
            for label, way in ways if run % 2 == 0 else ways[::-1]:
                for api in apis:
                    try:
                        api.remove_image(image_id, force=True)
                    except docker.errors.APIError:
                        pass
                seconds, _ = measure(label, way, source.api, apis, ref)
                times[label].append(seconds)
    finally:
        for api in [source.api, *apis]:
            try:
                api.remove_image(image_id, force=True)
            except docker.errors.APIError:
                pass
    for label, values in times.items():
        print(f"  {label:<22} median {statistics.median(values):6.2f} s  (runs: {fmt(values)})")


# --------------------------------------------------------------------------- the run


def measure(label: str, action: Callable[..., object], *args: object) -> tuple[float, object]:
    subprocess.run(["sync"], check=False)
    started = time.perf_counter()
    outcome = action(*args)
    seconds = time.perf_counter() - started
    print(f"  {label:<24} {seconds:7.2f} s", flush=True)
    return seconds, outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=200, help="image size (default 200)")
    parser.add_argument("--engines", type=int, default=3, help="target engines (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each (default 3)")
    parser.add_argument("--no-stream", action="store_true", help="leave out via stream")
    parser.add_argument(
        "--fanout",
        action="store_true",
        help="only compare one save per target with one save teed to all (engine level)",
    )
    args = parser.parse_args(argv)

    harness = load_harness(args.engines)
    if args.fanout:
        fanout_check(harness, args.size_mib, args.runs)
        return 0
    source = docker.DockerClient(base_url=harness.source, timeout=STEP_TIMEOUT)
    targets = {
        name: docker.DockerClient(base_url=host, timeout=STEP_TIMEOUT)
        for name, host in harness.targets.items()
    }
    every = [source, *targets.values()]
    names = list(targets)
    methods = ["berth-registry", "by-hand"] + ([] if args.no_stream else ["berth-stream"])
    times: dict[str, list[float]] = {m: [] for m in methods}
    memory: list[int] = []
    print(
        f"{args.size_mib} MiB image (random data) from the harness engine to {len(names)} "
        f"engines; registry {harness.registry}; {args.runs} runs, order alternating",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as workdir:
        with berth_server(harness, Path(workdir)) as berth:
            for run in range(args.runs):
                order = methods if run % 2 == 0 else list(reversed(methods))
                print(f"run {run + 1}", flush=True)
                for method in order:
                    image_id, ref = build_image(source, args.size_mib)
                    remote = f"{harness.registry}/{ref}"
                    try:
                        if method == "berth-registry":
                            seconds, document = measure(
                                "Berth, via registry",
                                berth_distribute,
                                berth,
                                ref,
                                {"registry": remote},
                                names,
                            )
                            rows = ", ".join(
                                f"{r['engine']} {r['duration']:.1f} s" for r in document["engines"]
                            )
                            print(
                                f"    push {document['push']['duration']:.1f} s; pulls: {rows}",
                                flush=True,
                            )
                        elif method == "by-hand":
                            seconds, steps = measure(
                                "by hand (docker CLI)", by_hand, harness, ref, remote
                            )
                            pulls = ", ".join(
                                f"{n} {v:.1f} s" for n, v in steps.items() if n != "push"
                            )
                            print(f"    push {steps['push']:.1f} s; pulls: {pulls}", flush=True)
                        else:
                            with MemorySampler(berth) as sampler:
                                seconds, _ = measure(
                                    "Berth, as a stream",
                                    berth_distribute,
                                    berth,
                                    ref,
                                    "stream",
                                    names,
                                )
                            grown = (sampler.peak - sampler.baseline) / 1024
                            memory.append(sampler.peak - sampler.baseline)
                            print(f"    workers' RSS grew by at most {grown:.1f} MiB", flush=True)
                        check_targets(targets, image_id, ref)
                        times[method].append(seconds)
                    finally:
                        remove_everywhere(every, image_id)

    print()
    print(f"median of {args.runs} runs ({args.size_mib} MiB to {len(names)} engines):")
    berth_time = statistics.median(times["berth-registry"])
    hand_time = statistics.median(times["by-hand"])
    print(f"  Berth, via registry    {berth_time:7.2f} s  (runs: {fmt(times['berth-registry'])})")
    print(f"  by hand (docker CLI)   {hand_time:7.2f} s  (runs: {fmt(times['by-hand'])})")
    print(f"  ratio by hand / Berth  {hand_time / berth_time:7.2f}")
    if "berth-stream" in times:
        stream_time = statistics.median(times["berth-stream"])
        print(
            f"  Berth, as a stream     {stream_time:7.2f} s  (runs: {fmt(times['berth-stream'])})"
        )
        print(f"  ratio by hand / stream {hand_time / stream_time:7.2f}")
        print(f"  workers' RSS growth during the stream: at most {max(memory) / 1024:.1f} MiB")
    for client in every:
        client.close()
    return 0


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
