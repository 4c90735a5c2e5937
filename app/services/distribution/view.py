"""A distribution as the API shows it, rebuilt from its job record and events by any worker."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.services.distribution.rows import ROW_DONE, new_row, summarise


def distribution_view(
    job: dict[str, Any], events: Iterable[dict[str, Any]], plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A distribution as the API shows it, from its job record and events.

    While the job runs, the rows come from its events (any worker can read them); once it
    ended, from its result or error, which hold the final rows. Rows a dead or cancelled job
    left unfinished are shown as it ended them.
    """
    rows: dict[str, dict[str, Any]] = {}
    pushed = None
    if plan is not None:
        rows = {name: new_row(name) for name in plan["targets"]}
    for line in events:
        if "distribution" in line:
            plan = line["distribution"]
            rows = {name: new_row(name) for name in plan["targets"]} | rows
        elif "row" in line and isinstance(line["row"], dict):
            rows[line["row"]["engine"]] = line["row"]
        elif "push" in line:
            pushed = line["push"]
    final = job.get("result") or job.get("error") or {}
    if isinstance(final.get("engines"), list):
        rows = {row["engine"]: row for row in final["engines"]}
        pushed = final.get("push", pushed)
        plan = {
            "image": final.get("image"),
            "image_id": final.get("image_id"),
            "source_engine": final.get("source_engine"),
            "via": final.get("via"),
            "registry": final.get("registry"),
            "targets": final.get("targets") or list(rows),
        }
    if job["state"] in ("failed", "cancelled"):
        ended = "cancelled" if job["state"] == "cancelled" else "failed"
        for name, row in rows.items():
            if row["state"] not in ROW_DONE:
                error = None if ended == "cancelled" else job.get("error")
                rows[name] = {**row, "state": ended, "error": error}
    plan = plan or {}
    listed = list(rows.values())
    summary = summarise(listed)
    return {
        "image": plan.get("image") or job.get("target"),
        "image_id": plan.get("image_id"),
        "source_engine": plan.get("source_engine") or job.get("engine"),
        "via": plan.get("via"),
        "registry": plan.get("registry"),
        "push": pushed,
        "engines": listed,
        "summary": summary,
        "partial": job["state"] == "failed" and bool(summary["succeeded"]),
    }
