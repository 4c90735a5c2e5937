"""Distribution: one image from a source engine to many target engines, as one job.

Two ways to move it:

* **via a registry** (``via_registry``) — the source pushes the image once, then every target
  pulls it *by the digest the registry confirmed*, ``BERTH_DISTRIBUTION_PARALLELISM`` targets
  at a time, and is tagged with the registry reference (and the image's own name, when it was
  named);
* **as a stream** (``via_stream``) — for engines that reach no registry: the source's
  ``docker save`` is fed, chunk by chunk, into ``docker load`` on the targets.

``planning`` checks a request before the job starts, ``rows`` keeps each target's state as job
events, ``run`` runs the job and judges its outcome, ``view`` shows it. The push, pull and load
themselves are the shared use cases of ``app.services``. Plain Python over engines taken from
the pool: no flask, no docker.
"""

from app.services.distribution.planning import (
    VIA_REGISTRY,
    VIA_STREAM,
    Plan,
    plan_distribution,
    resolve_engines,
    source_names,
)
from app.services.distribution.rows import ROW_DONE, ROW_STATES, PullBytes, Rows, summarise
from app.services.distribution.run import run_distribution
from app.services.distribution.view import distribution_view

__all__ = [
    "ROW_DONE",
    "ROW_STATES",
    "VIA_REGISTRY",
    "VIA_STREAM",
    "Plan",
    "PullBytes",
    "Rows",
    "distribution_view",
    "plan_distribution",
    "resolve_engines",
    "run_distribution",
    "source_names",
    "summarise",
]
