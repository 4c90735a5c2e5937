"""Running a distribution as one job, and its outcome: all targets, or a problem saying which.

A row succeeds only when the target reports the *source's* image id. The job's result (or its
error, when some target failed) holds the final rows. A distribution with a failed target is a
failed job, whose problem says which targets have the image and which do not: partial success
is never reported as success.
"""

from __future__ import annotations

from typing import Any

from app.errors import BerthError, DistributionFailed, DistributionPartial, Internal
from app.jobs import JobCancelled, JobContext
from app.registry.client import RegistryClient
from app.registry.policy import OutboundPolicy
from app.services.distribution.planning import VIA_REGISTRY, Plan
from app.services.distribution.rows import Rows, summarise
from app.services.distribution.via_registry import via_registry
from app.services.distribution.via_stream import via_stream


def run_distribution(
    ctx: JobContext,
    plan: Plan,
    pool: Any,
    *,
    auth: dict[str, Any] | None = None,
    verifier: RegistryClient | None = None,
    parallelism: int = 4,
    outbound: OutboundPolicy,
) -> dict[str, Any]:
    """Run ``plan`` as the job ``ctx``: the result document, or a BerthError saying which
    targets have the image and which do not (DISTRIBUTION_PARTIAL or DISTRIBUTION_FAILED).

    ``auth`` (registry credentials, via registry) lives only in this call's closure. The
    registry must pass ``outbound`` before any engine is asked to push or pull.
    """
    rows = Rows(plan.targets, ctx, estimate=plan.size)
    targets = ", ".join(plan.targets)
    how = f"registry {plan.registry}" if plan.registry else "stream"
    ctx.record(
        {
            "status": f"Distributing {plan.image} from {plan.source} to {targets} via {how}",
            "distribution": plan.document(),
        }
    )
    ctx.flush()
    pushed = None
    try:
        if plan.via == VIA_REGISTRY:
            assert plan.registry is not None
            try:
                outbound.check(plan.registry.registry)
            except BerthError as e:
                rows.end_unfinished("failed", e)
                raise
            pushed = via_registry(ctx, plan, pool, rows, auth, verifier, parallelism)
        else:
            via_stream(ctx, plan, pool, rows, parallelism)
    except JobCancelled:
        rows.end_unfinished("cancelled")
        raise
    except BerthError as e:  # the push failed: no target was attempted
        failed_push = {"reference": str(plan.registry), "error": e.to_problem()}
        raise _incomplete(plan, rows.snapshot(), failed_push, cause=e) from None
    if ctx.cancelled.is_set():
        rows.end_unfinished("cancelled")
        raise JobCancelled("The job was cancelled before it finished.")
    rows.end_unfinished("failed", Internal("The transfer ended without an outcome."))
    snapshot = rows.snapshot()
    if any(row["state"] != "succeeded" for row in snapshot):
        raise _incomplete(plan, snapshot, pushed)
    return {**plan.document(), "push": pushed, "engines": snapshot, **summarise(snapshot)}


def _incomplete(
    plan: Plan,
    snapshot: list[dict[str, Any]],
    pushed: dict[str, Any] | None,
    cause: BerthError | None = None,
) -> BerthError:
    summary = summarise(snapshot)
    partial = bool(summary["succeeded"])
    if cause is not None:
        detail = (
            f"The push of {plan.image} from '{plan.source}' to {plan.registry} failed "
            f"({cause.code}: {cause.detail}); no engine received the image."
        )
    else:
        reasons = []
        for row in snapshot:
            if row["state"] != "succeeded":
                error = row["error"] or {}
                reason = f"{error.get('code')}: {error.get('detail')}" if error else row["state"]
                reasons.append(f"{row['engine']} ({reason})")
        detail = (
            f"{len(reasons)} of {len(snapshot)} target engines did not get {plan.image}: "
            + "; ".join(reasons)
            + "."
        )
        if partial:
            detail += f" These have it: {', '.join(summary['succeeded'])}."
    failure = DistributionPartial if partial else DistributionFailed
    return failure(
        detail,
        partial=partial,
        **plan.document(),
        push=pushed,
        engines=snapshot,
        **summary,
    )
