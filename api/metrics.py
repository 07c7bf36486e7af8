"""Prometheus metrics at GET /metrics (prometheus-client): request latency per route template, and the
service's figures read from SQL and the broker at scrape time (docs/SERVICE.md "Operate it")."""
from __future__ import annotations

import os
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import SettingsDep
from api.quality_metrics import QualityCollector
from core.db import session_scope
from core.figures import service_figures
from core.queue import broker_job_ids

REQUEST_SECONDS = Histogram(
    "trainserve_http_request_duration_seconds", "HTTP request latency by route template (streams: their lifetime)",
    ["method", "route", "status"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


class RequestTimer:
    """ASGI middleware: observes each request under its route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], route, str(status[0])).observe(time.perf_counter() - started)


class ServiceCollector(Collector):
    """Jobs by status, queue depth, attempts and resumes, training speed per worker; read when scraped."""

    def __init__(self) -> None:
        self.broker = None  # a redis client, set by the app that serves /metrics
        self.database_url: str | None = None  # the app's, set likewise

    def describe(self):
        # without it, registering calls collect(): a SQL query at import, before any migration
        return []

    def collect(self):
        with session_scope(self.database_url) as session:
            figures = service_figures(session)
        jobs = GaugeMetricFamily("trainserve_jobs", "jobs by status", labels=["status"])
        for status, n in figures.jobs_by_status.items():
            jobs.add_metric([status], n)
        yield jobs
        yield GaugeMetricFamily("trainserve_queue_depth", "jobs queued (SQL)", value=figures.jobs_by_status["queued"])
        if self.broker is not None:
            try:
                waiting = len(broker_job_ids(self.broker))
            except Exception:  # the broker down: the SQL figures still answer
                waiting = float("nan")
            yield GaugeMetricFamily("trainserve_broker_queue_length", "job ids waiting in the broker's training queue", value=waiting)
        yield GaugeMetricFamily("trainserve_job_attempts", "attempts ever started", value=figures.attempts)
        yield GaugeMetricFamily("trainserve_job_resumes", "attempts that resumed from a checkpoint",
                                value=figures.resumed_attempts)
        speed = GaugeMetricFamily("trainserve_training_samples_per_second", "running job's speed per worker",
                                  labels=["worker"])
        for worker, value in figures.samples_per_second.items():
            speed.add_metric([worker], value)
        yield speed


COLLECTOR = ServiceCollector()
REGISTRY.register(COLLECTOR)
QUALITY = QualityCollector()
REGISTRY.register(QUALITY)
router = APIRouter(tags=["operate"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus text format: request latency per route, jobs by status, queue depth, attempts, resumes, speed,
    and the serving versions' live quality (abstain rate, label divergence, feedback accuracy, drift)."""
    COLLECTOR.broker, COLLECTOR.database_url = request.app.state.redis_sync, settings.database_url
    QUALITY.settings = settings
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """This process's metrics, or with several API processes (`make run`'s API_PROCESSES sets
    PROMETHEUS_MULTIPROC_DIR) every process's counters and histograms added up, whichever one is scraped."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(COLLECTOR)  # read from SQL and the broker: the same whichever process answers
    registry.register(QUALITY)
    return registry
