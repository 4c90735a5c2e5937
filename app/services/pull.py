"""Pulling one image: the name to ask for, the engine's pull, and proof that it arrived.

The engine reports most failures inside a 200 stream: the caller reads ``Pull.events()`` into
``Pull.progress()`` (an HTTP answer, a job, or a distribution's row) and ``Pull.outcome`` then
accepts the pull only when the image is really there, for the platform asked for. A name without
tag means ``:latest``, never all tags.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.domain.familiar import familiar
from app.domain.progress import Progress
from app.domain.references import parse_reference


@dataclass(frozen=True)
class PullPlan:
    """``repository`` at ``tag`` (a tag or a digest), known locally as ``local_name``."""

    registry: str
    repository: str
    tag: str
    local_name: str
    platform: str | None = None


def plan_pull(reference: str, platform: str | None = None) -> PullPlan:
    """What ``docker pull reference`` asks for; 400 INVALID_REFERENCE for a bad reference."""
    ref = parse_reference(reference).with_default_tag()
    if ref.digest:
        name, tag = familiar(f"{ref.repository}@{ref.digest}"), ref.digest
    else:
        name, tag = familiar(f"{ref.repository}:{ref.tag}"), str(ref.tag)
    return PullPlan(ref.registry, ref.repository, tag, name, platform)


def plan_pull_by_digest(registry: str, repository: str, digest: str) -> PullPlan:
    """A pull of ``repository@digest`` (a distribution's target pulls what was pushed)."""
    return PullPlan(registry, repository, digest, f"{repository}@{digest}")


class Pull:
    """One pull on one engine; ``credentials`` go to the engine for this call only."""

    def __init__(self, engine: Any, plan: PullPlan, credentials: dict[str, Any] | None) -> None:
        self.engine, self.plan, self._credentials = engine, plan, credentials

    def events(self) -> Iterator[dict[str, Any]]:
        """Start the pull; the engine's progress events (a refusal with a status raises here)."""
        plan = self.plan
        return self.engine.pull_image(
            plan.repository, plan.tag, platform=plan.platform, credentials=self._credentials
        )

    @staticmethod
    def progress() -> Progress:
        return Progress()

    def outcome(self, progress: Progress) -> dict[str, Any]:
        """``{"id", "reference", "digest"}`` once the image is there; else a BerthError."""
        progress.raise_for_error()
        plan = self.plan
        result = self.engine.pulled_image(plan.local_name, plan.repository, plan.platform)
        result["digest"] = result["digest"] or progress.digest
        return result
