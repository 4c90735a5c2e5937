"""The fleet view: every configured engine probed in parallel, a slow one never blocking."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from app.engine import EnginePool
from app.errors import BerthError

PROBE_SECONDS = 5.0
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="engine-probe")


def _probe(pool: EnginePool, name: str) -> dict[str, Any]:
    engine = pool.get(name)
    try:
        version = engine.version()
        images = engine.image_count()
    except BerthError as e:
        return {
            "name": name,
            "reachable": False,
            "version": None,
            "api_version": None,
            "images": None,
            "error": e.detail,
        }
    return {
        "name": name,
        "reachable": True,
        "version": version["version"],
        "api_version": version["api_version"],
        "images": images,
        "error": None,
    }


def probe_engines(pool: EnginePool, names: list[str]) -> list[dict[str, Any]]:
    """Status of each engine in ``names``; those silent after PROBE_SECONDS are unreachable."""
    futures = {name: _executor.submit(_probe, pool, name) for name in names}
    wait(futures.values(), timeout=PROBE_SECONDS)
    rows = []
    for name, future in futures.items():
        if future.done():
            rows.append(future.result())
        else:
            rows.append(
                {
                    "name": name,
                    "reachable": False,
                    "version": None,
                    "api_version": None,
                    "images": None,
                    "error": f"The engine did not answer within {PROBE_SECONDS:g} s.",
                }
            )
    return rows
