#!/usr/bin/env python3
"""Cold-start benchmark: ``GET /v1/usage`` and ``/layers`` at scale, beside ``docker system df -v``.

Run by hand, from the repository root, with the project's Python, against an engine you may fill:

    DOCKER_HOST=unix:///var/run/docker.sock python bench/usage.py --images 2000

It loads ``--images`` images made for the purpose (one ``docker load`` of a generated archive:
every image holds a shared base layer, half of them a second shared layer, each one a small layer
of its own; one in ten is untagged, so a prune has something to free; with ``--stale-layer``
the untagged ones also share a layer no tagged image holds, so what a prune frees cannot be
decided from a few witnesses and every image's layers are read), then times, each ``--rounds``
times and keeping the median:

* ``docker system df -v`` (the CLI, one ``/system/df?verbose`` call);
* Berth's ``GET /v1/usage`` and ``GET /v1/images/{ref}/layers`` in a freshly built app, so every
  cache is cold (the first request a new worker answers), then once more warm;
* the first ``GET /v1/usage`` of a fresh app whose image facts were warmed first, as a gunicorn
  worker does at its start (the warm-up timed apart).

``--app-tree DIR`` times the Berth of another checkout (``git worktree add DIR <commit>``) on
the same images, for a before-and-after in one sitting.

The target: cold ``/v1/usage`` within 1.5x of the CLI. The images carry the label
``berth.bench=usage`` (``usage-stale``) and are removed at the end unless ``--keep-images``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run by hand as bench/usage.py
    sys.path.insert(0, str(ROOT))
from tests.support.layered import layered_archive  # noqa: E402

# Berth's create_app and services accessor, imported in main() from --app-tree or this tree.
BERTH: dict[str, Any] = {}

LABEL = "berth.bench"
REPOSITORY = "berth-bench/usage"


def archive(count: int, kind: str) -> bytes:
    """A ``docker save`` archive of ``count`` images sharing their lower layers."""
    images = []
    for n in range(count):
        lower = ["base", "middle"] if n % 2 else ["base"]
        untagged = n % 10 == 0
        if untagged and kind == "usage-stale":
            lower.append("stale")
        tags = [] if untagged else [f"{REPOSITORY}:{n}"]
        images.append((tags, [*lower, f"own-{n}"]))
    sizes = {"base": 256 * 1024, "middle": 64 * 1024, "stale": 16 * 1024}
    sizes |= {f"own-{n}": 4096 for n in range(count)}
    return layered_archive(images, sizes, {LABEL: kind})


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def fresh_app():
    return BERTH["create_app"](
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
    engines = BERTH["services"](app).engines
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
    parser.add_argument("--stale-layer", action="store_true")
    parser.add_argument(
        "--app-tree", type=Path, help="time the Berth of this tree (e.g. an older commit's)"
    )
    args = parser.parse_args()
    if args.app_tree:
        sys.path.insert(0, str(args.app_tree.resolve()))
    from app import create_app
    from app.http.accessors import services

    BERTH.update(create_app=create_app, services=services)
    engine = docker.from_env(timeout=600)
    kind = "usage-stale" if args.stale_layer else "usage"
    if not engine.images.list(filters={"label": f"{LABEL}={kind}"}):
        data = archive(args.images, kind)
        seconds = timed(lambda: engine.images.load(data))
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
            for image in engine.images.list(filters={"label": f"{LABEL}={kind}"}):
                engine.images.remove(image.id, force=True)


if __name__ == "__main__":
    main()
