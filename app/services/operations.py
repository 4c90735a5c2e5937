"""The shape the long use cases share (pull, push, load), and running one as a job.

Each is an object with ``events()`` (the engine's progress stream, started when called),
``progress()`` (the ``Progress`` that reads it) and ``outcome(progress)`` (the checked result,
or a BerthError when the operation did not really succeed). A view drives it in the request
(``app.http.streaming.run_progress``), a job with ``run_in_job``, a distribution row by row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from app.domain.progress import Progress
from app.jobs import JobContext


class ProgressOperation(Protocol):
    def events(self) -> Iterable[dict[str, Any]]: ...

    def progress(self) -> Progress: ...

    def outcome(self, progress: Progress) -> dict[str, Any]: ...


def run_in_job(ctx: JobContext, operation: ProgressOperation) -> dict[str, Any]:
    """Run ``operation`` as the job ``ctx`` (progress recorded, cancellable); its result."""
    return operation.outcome(ctx.follow(operation.events(), operation.progress()))
