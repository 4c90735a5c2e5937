#!/usr/bin/env python3
"""Two Berth trees side by side: the same cached metadata reads, in alternating short windows.

Run by hand, from the repository root, with the project's Python, against an engine you may fill:

    git worktree add ../berth-before <commit>
    DOCKER_HOST=unix:///var/run/docker.sock python bench/trees.py ../berth-before --pairs 30

Both trees serve at once, each with its own ``gunicorn.conf.py`` (and this tree's Python
environment); wrk loads the other tree's Berth for ``--window`` seconds, then this tree's, and so
on ``--pairs`` times, so that the machine's drift (its neighbours, its clock) falls on both
alike. ``bench/load.py`` runs each server once, one after the other, and on a shared machine its
figures move by 10-20% between runs; a pair of windows taken seconds apart moves much less.
Reported for each endpoint and connection count: the median requests/s and CPU microseconds per
request of each server's processes, and the median of the per-pair ratios (this tree / other).
``--other-args`` / ``--this-args`` give either server other gunicorn settings; with ``.`` as the
other checkout, a setting is measured against this tree's defaults.
Needs wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run by hand as bench/trees.py
    sys.path.insert(0, str(ROOT))
from bench.load import META_IMAGE, cpu_seconds, ensure_image, remove_image  # noqa: E402
from scripts.berth_server import start_gunicorn  # noqa: E402

TOKEN = "trees-" + "b" * 24
PATHS = {
    "inspect": f"/v1/images/{META_IMAGE}",
    "list": "/v1/images",
    "history": f"/v1/images/{META_IMAGE}/history",
}


def window(url: str, connections: int, seconds: int, pid: int) -> tuple[float, float]:
    """wrk on ``url``: requests per second, and CPU microseconds per request of ``pid``'s tree."""
    command = ["wrk", "-t", str(min(2, connections)), "-c", str(connections)]
    command += ["-d", f"{seconds}s", "-H", f"Authorization: Bearer {TOKEN}", url]
    before = cpu_seconds([pid])
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30)
    used = cpu_seconds([pid]) - before
    if "Non-2xx" in out.stdout:
        raise SystemExit(f"{url} answered errors:\n{out.stdout}")
    requests = int(re.search(r"(\d+) requests in", out.stdout).group(1))
    return requests / seconds, used * 1e6 / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (e.g. an older commit's)")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--window", type=int, default=3, help="seconds of each window")
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--endpoints", default="inspect", help="inspect,list,history")
    parser.add_argument("--other-args", default="", help="gunicorn settings for the other tree")
    parser.add_argument("--this-args", default="", help="gunicorn settings for this tree")
    parser.add_argument("--keep-images", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk")
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    client = docker.APIClient(base_url=docker_host)
    created = ensure_image(
        client, META_IMAGE, 4096, ["ENV APP=bench", 'CMD ["/payload.bin"]', "WORKDIR /srv"]
    )
    work = Path(tempfile.mkdtemp(prefix="berth-trees-"))
    servers = {}
    try:
        for name, root, settings in (
            ("other", args.other.resolve(), args.other_args),
            ("this", ROOT, args.this_args),
        ):
            env = {
                "DOCKER_HOST": docker_host,
                "BERTH_DATA_DIR": str(work / f"{name}-data"),
                "BERTH_TOKENS": json.dumps([{"name": "b", "token": TOKEN, "scopes": ["read"]}]),
            }
            if settings:
                env["GUNICORN_CMD_ARGS"] = settings
            servers[name] = start_gunicorn(env, work / f"{name}.log", root=root)
        for endpoint in args.endpoints.split(","):
            for connections in [int(c) for c in args.connections.split(",")]:
                figures: dict[str, list[tuple[float, float]]] = {"other": [], "this": []}
                for server in servers.values():  # a first window fills caches, not counted
                    window(server.url + PATHS[endpoint], connections, 2, server.process.pid)
                for _ in range(args.pairs):
                    for name, server in servers.items():
                        url = server.url + PATHS[endpoint]
                        figures[name].append(
                            window(url, connections, args.window, server.process.pid)
                        )
                pairs = zip(figures["other"], figures["this"], strict=True)
                ratios = [this[0] / other[0] for other, this in pairs]
                line = f"{endpoint:8} c{connections:<3}"
                for name in ("other", "this"):
                    rates = statistics.median(r for r, _ in figures[name])
                    cpu = statistics.median(c for _, c in figures[name])
                    line += f"  {name} {rates:7.0f} req/s {cpu:5.0f} us/req"
                spread = sorted(ratios)
                quarter = len(spread) // 4
                line += f"  ratio {statistics.median(ratios):.2f}"
                line += f" [{spread[quarter]:.2f}-{spread[-1 - quarter]:.2f}]"
                print(line, flush=True)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if created and not args.keep_images:
            remove_image(client, META_IMAGE)


if __name__ == "__main__":
    main()
