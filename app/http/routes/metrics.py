"""Prometheus metrics endpoint."""

from __future__ import annotations

from flask import Blueprint, Response

from app.http.accessors import services
from app.http.operation import operation
from app.observability import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@operation(
    tags=["operations"],
    engine=False,
    response_content={"text/plain": {"schema": {"type": "string"}}},
)
def prometheus_metrics():
    """Prometheus metrics (scope `metrics`, or public with BERTH_METRICS_PUBLIC=true).

    Requests by route and status, request and engine-call latency histograms, bytes streamed in
    and out, and jobs by state.
    """
    body, content_type = metrics.render(services().metrics_collectors)
    return Response(body, content_type=content_type)
