"""A distribution via a registry: one push from the source, then every target pulls by digest.

The push and the pulls are the shared use cases (``app.services.push``, ``app.services.pull``);
what is added here is the job's bookkeeping: a row per target, the image id checked against the
source's, the target tagged with the registry reference and the image's own name where it uses
neither for another image. Layers a target already has are not moved again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.domain.progress import consume
from app.errors import BerthError
from app.jobs import JobCancelled, JobContext
from app.registry.client import RegistryClient
from app.services.distribution.planning import Plan
from app.services.distribution.rows import PullBytes, Rows, end_after, mismatch
from app.services.local_tags import free_names, tag_for
from app.services.pull import Pull, plan_pull_by_digest
from app.services.push import Push, plan_push


def push_once(
    ctx: JobContext,
    plan: Plan,
    source: Any,
    rows: Rows,
    auth: dict[str, Any] | None,
    verifier: RegistryClient | None,
) -> dict[str, Any]:
    """Push the image once from the source; ``{"reference", "digest", "bytes", "duration"}``."""
    assert plan.registry is not None
    started = time.monotonic()
    push = Push(source, plan_push(plan.image_id, str(plan.registry)), auth, verifier)
    # The source's local tags are as they were once the push ends (app.services.local_tags).
    events = push.events()
    ctx.on_cancel(events.abort)
    progress = push.progress()
    try:
        ctx.check()
        for line in consume(events, progress):
            ctx.check()
            ctx.record({**line, "engine": plan.source})
            rows.push_bytes = progress.current
        ctx.check()
    finally:
        events.close()
    outcome = push.outcome(progress)
    pushed = {
        "reference": outcome["reference"],
        "digest": outcome["digest"],
        "bytes": progress.current,
        "duration": round(time.monotonic() - started, 3),
        "error": None,
    }
    ctx.record({"status": f"Pushed {outcome['reference']}@{outcome['digest']}", "push": pushed})
    ctx.flush()
    return pushed


def pull_to(
    ctx: JobContext,
    plan: Plan,
    name: str,
    target: Any,
    rows: Rows,
    digest: str,
    auth: dict[str, Any] | None,
) -> None:
    """One target: pull ``repository@digest``, check the image id, tag it; the row records it."""
    assert plan.registry is not None
    if ctx.cancelled.is_set() or not rows.start(name):
        rows.finish(name, "cancelled")
        return
    repository, tag = plan.registry.repository, str(plan.registry.tag)
    pull = Pull(target, plan_pull_by_digest(plan.registry.registry, repository, digest), auth)
    progress, moved = pull.progress(), PullBytes()
    try:
        events = pull.events()
        try:
            for line in consume(events, progress):
                ctx.check()
                moved.feed(line)
                rows.moved(name, moved.done, moved.total)
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()  # abandons the engine's stream (and so the pull) when cut short
        ctx.check()
        pulled = pull.outcome(progress)
        if pulled["id"] != plan.image_id:
            raise mismatch(name, pulled["id"], plan.image_id)
        # Names the target uses for another image stay as they are (the event says which).
        free, taken = free_names(target, pulled["id"], [f"{repository}:{tag}", *plan.names])
        tag_for(target, pulled["id"], free)
        if taken:
            ctx.record({"status": f"{name}: kept its own {', '.join(taken)}", "engine": name})
    except Exception as e:
        end_after(ctx, rows, name, e, moved.done)
    else:
        rows.finish(name, "succeeded", image_id=pulled["id"], done=moved.done)


def via_registry(
    ctx: JobContext,
    plan: Plan,
    pool: Any,
    rows: Rows,
    auth: dict[str, Any] | None,
    verifier: RegistryClient | None,
    parallelism: int,
) -> dict[str, Any]:
    """Push once, then pull on ``parallelism`` targets at a time; the push's record."""
    try:
        pushed = push_once(ctx, plan, pool.get(plan.source), rows, auth, verifier)
    except BerthError as e:
        if ctx.cancelled.is_set():
            raise JobCancelled("The job was cancelled before it finished.") from None
        rows.end_unfinished("failed", e)
        raise
    workers = max(1, min(parallelism, len(plan.targets)))
    with ThreadPoolExecutor(workers, thread_name_prefix=f"berth-dist-{ctx.id[:8]}") as threads:
        for name in plan.targets:
            target, digest = pool.get(name), pushed["digest"]
            threads.submit(ctx.call, pull_to, ctx, plan, name, target, rows, digest, auth)
    return pushed
