#!/usr/bin/env python3
"""Cold-start benchmark: ``GET /v1/usage`` and ``/layers`` at scale, beside ``docker system df -v``.

Run by hand, from the repository root, with the project's Python, against an engine you may fill:

    DOCKER_HOST=unix:///var/run/docker.sock python bench/usage.py --images 2000

It loads ``--images`` images made for the purpose (one ``docker load`` of a generated archive:
every image holds a shared base layer, half of them a second shared layer, each one a small layer
of its own; one in ten is untagged, so a prune has something to free), then times, each
``--rounds`` times and keeping the median:

* ``docker system df -v`` (the CLI, one ``/system/df?verbose`` call);
* Berth's ``GET /v1/usage`` and ``GET /v1/images/{ref}/layers`` in a freshly built app, so every
  cache is cold (the first request a new worker answers), then once more warm;
* the first ``GET /v1/usage`` of a fresh app whose image facts were warmed first, as a gunicorn
  worker does at its start (the warm-up timed apart).

The target: cold ``/v1/usage`` within 1.5x of the CLI. The images carry the label
``berth.bench=usage`` and are removed at the end unless ``--keep-images``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run by hand as bench/usage.py
    sys.path.insert(0, str(ROOT))
from app import create_app  # noqa: E402
from app.http.accessors import services  # noqa: E402

LABEL = "berth.bench"
REPOSITORY = "berth-bench/usage"


def layer_tar(name: str, size: int) -> bytes:
    """A layer: one file of ``size`` bytes (its content depends on ``name``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = (hashlib.sha256(name.encode()).hexdigest() * (size // 64 + 1)).encode()[:size]
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def archive(count: int, path: Path) -> None:
    """A ``docker save`` archive of ``count`` images sharing their lower layers."""
    shared = [layer_tar("base", 256 * 1024), layer_tar("middle", 64 * 1024)]
    digests = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in shared]
    manifest = []
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for index, layer in enumerate(shared):
            add(f"shared{index}/layer.tar", layer)
        for n in range(count):
            own = layer_tar(f"own-{n}", 4096)
            own_digest = "sha256:" + hashlib.sha256(own).hexdigest()
            add(f"own{n}/layer.tar", own)
            lower = [0, 1] if n % 2 else [0]
            config = {
                "architecture": "amd64",
                "os": "linux",
                "created": "2026-01-01T00:00:00Z",
                "config": {"Labels": {LABEL: "usage", "n": str(n)}},
                "rootfs": {
                    "type": "layers",
                    "diff_ids": [*(digests[i] for i in lower), own_digest],
                },
                "history": [
                    {"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in [*lower, n]
                ],
            }
            blob = json.dumps(config).encode()
            name = hashlib.sha256(blob).hexdigest() + ".json"
            add(name, blob)
            manifest.append(
                {
                    "Config": name,
                    "RepoTags": [] if n % 10 == 0 else [f"{REPOSITORY}:{n}"],
                    "Layers": [*(f"shared{i}/layer.tar" for i in lower), f"own{n}/layer.tar"],
                }
            )
        add("manifest.json", json.dumps(manifest).encode())


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def fresh_app():
    return create_app(
        {
            "DOCKER_HOST": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
            "BERTH_AUTH": "disabled",
            "BERTH_DATA_DIR": tempfile.mkdtemp(prefix="berth-bench-"),
            "BERTH_LOG_LEVEL": "WARNING",
        }
    )


def berth_get(path: str) -> None:
    client = fresh_app().test_client()
    for label in ("cold", "warm"):
        seconds = timed(lambda: _ok(client.get(path)))
        RESULTS.setdefault((path, label), []).append(seconds)


def berth_get_after_warming(path: str) -> None:
    """The first request of a worker that warmed its image facts at start, as gunicorn's
    post_worker_init has it do (the warm-up itself timed apart: it runs before any request)."""
    app = fresh_app()
    engines = services(app).engines
    RESULTS.setdefault(("(warm-up at worker start)", "bg"), []).append(
        timed(lambda: engines.warm(engines.names).join())
    )
    client = app.test_client()
    RESULTS.setdefault((path, "1st "), []).append(timed(lambda: _ok(client.get(path))))


def _ok(response) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


RESULTS: dict[tuple[str, str], list[float]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep-images", action="store_true")
    args = parser.parse_args()
    engine = docker.from_env(timeout=600)
    if not engine.images.list(filters={"label": f"{LABEL}=usage"}):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "images.tar"
            archive(args.images, path)
            seconds = timed(lambda: engine.images.load(path.read_bytes()))
            print(f"loaded {args.images} images in {seconds:.1f} s")
    total = len(engine.images.list())
    ref = f"{REPOSITORY}:1"
    try:
        cli = []
        for _ in range(args.rounds):
            cli.append(
                timed(
                    lambda: subprocess.run(
                        ["docker", "system", "df", "-v"], check=True, capture_output=True
                    )
                )
            )
            berth_get("/v1/usage")
            berth_get(f"/v1/images/{ref}/layers")
            berth_get_after_warming("/v1/usage")
        print(f"engine holds {total} images; median of {args.rounds} rounds")
        print(f"docker system df -v        {statistics.median(cli):7.3f} s")
        for (path, label), values in RESULTS.items():
            what = path if label == "bg" else f"{label:4} GET {path}"
            print(f"{what:43} {statistics.median(values):7.3f} s")
        ratio = statistics.median(RESULTS[("/v1/usage", "cold")]) / statistics.median(cli)
        print(f"cold /v1/usage / docker system df -v = {ratio:.2f} (target <= 1.5)")
        first = statistics.median(RESULTS[("/v1/usage", "1st ")]) / statistics.median(cli)
        print(f"first /v1/usage of a warmed worker / docker system df -v = {first:.2f}")
    finally:
        if not args.keep_images:
            for image in engine.images.list(filters={"label": f"{LABEL}=usage"}):
                engine.images.remove(image.id, force=True)


if __name__ == "__main__":
    main()
