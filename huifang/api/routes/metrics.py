"""`/metrics` in the Prometheus text format: calls in flight, attempt outcomes, queue depth,
open tickets and their age, recognizer latency (see `huifang.stats.metrics`).

Unauthenticated like `/healthz`, as Prometheus scrapes expect; it shows counts only, never a
phone number or a name.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from huifang.api.deps import RuntimeDep
from huifang.stats.metrics import metrics_registry

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
def metrics(runtime: RuntimeDep) -> Response:
    return Response(generate_latest(metrics_registry(runtime)), media_type=CONTENT_TYPE_LATEST)
