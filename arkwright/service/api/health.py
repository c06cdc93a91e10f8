"""`/healthz` and `/metrics`: open, cheap, and read from the core at request time."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from arkwright.service.api.deps import Control
from arkwright.service.control import ControlPlane
from arkwright.service.overview import job_counts

router = APIRouter(tags=["health"])


class CoreCollector:
    """Prometheus gauges read from the core at scrape time (no double bookkeeping)."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    def collect(self) -> Iterator:
        scheduler = self.control.scheduler
        queue = GaugeMetricFamily(
            "arkwright_queue_length",
            "Jobs waiting (queued or held), by programme",
            labels=["tenant"],
        )
        busy = GaugeMetricFamily(
            "arkwright_gpus_busy", "GPUs allocated, by pool", labels=["pool", "site", "gpu_model"]
        )
        total = GaugeMetricFamily("arkwright_gpus_total", "GPUs, by pool", labels=["pool"])
        submissions = CounterMetricFamily("arkwright_submissions", "Jobs accepted")
        with self.control.lock:
            waiting = job_counts(scheduler).waiting
            busy_by_pool = [scheduler.busy_gpus(p.index) for p in self.control.fleet.pools]
            accepted = self.control.stats.submissions
        for tenant, count in sorted(waiting.items()):
            queue.add_metric([tenant], count)
        for pool, used in zip(self.control.fleet.pools, busy_by_pool, strict=True):
            busy.add_metric([pool.name, pool.site.name, pool.gpu_model], used)
            total.add_metric([pool.name], pool.gpus)
        submissions.add_metric([], accepted)
        yield from (queue, busy, total, submissions)


def metrics_registry(control: ControlPlane) -> CollectorRegistry:
    """The service's metrics: the core's gauges, and the pass latency it reports."""
    registry = CollectorRegistry()
    registry.register(CoreCollector(control))
    pass_seconds = Histogram(
        "arkwright_schedule_pass_seconds",
        "Scheduling pass latency",
        registry=registry,
        buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
    )
    control.on_pass = pass_seconds.observe
    return registry


@router.get("/healthz")
def healthz(control: Control) -> dict:
    with control.lock:
        # job_counts' definition (every accepted job not running is waiting), in O(1):
        # health checks come often and the queue may be long.
        scheduler = control.scheduler
        return {
            "status": "ok",
            "role": "leader" if control.is_leader else "api" if control.api_only else "standby",
            "pending": len(scheduler.jobs) - scheduler.running,
            "running": scheduler.running,
            "passes": control.stats.passes,
        }


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
