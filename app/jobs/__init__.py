"""Jobs: long operations (pull, push, load) run in the background and reported by any worker.

    runner = runner_from_config(config)  # once per app, in create_app
    job = runner.submit("push", principal.name, "registry:5000/app:1.0", run)

``run(ctx: JobContext) -> dict`` does the work: it reads the engine's progress stream with
``ctx.follow(events, Progress())`` (which records progress and honours cancellation) and returns
the result document, or raises a BerthError whose problem document becomes the job's ``error``.
Records live in SQLite under ``BERTH_DATA_DIR`` (see ``app.jobs.store``), so every worker process
answers for every job; jobs left behind by a dead worker are failed with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.jobs.runner import JobCancelled, JobContext, JobRunner
from app.jobs.store import ACTIVE, STATES, TERMINAL, JobStore

__all__ = [
    "ACTIVE",
    "STATES",
    "TERMINAL",
    "JobCancelled",
    "JobContext",
    "JobRunner",
    "JobStore",
    "runner_from_config",
]


def runner_from_config(config: Mapping[str, Any]) -> JobRunner:
    """The runner ``create_app`` builds once per app (its threads start with the first job)."""
    return JobRunner(
        JobStore.in_dir(config["BERTH_DATA_DIR"]),
        concurrency=config.get("BERTH_JOB_CONCURRENCY", 4),
        retention=config["BERTH_JOB_RETENTION_SECONDS"],
        max_queued=config.get("BERTH_MAX_QUEUED_JOBS", 32),
    )
