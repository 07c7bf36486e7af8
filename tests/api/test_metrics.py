"""GET /metrics: Prometheus text with request latency per route template and the service's figures."""
from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.jobs import TINY_LINEAR, submit, wait_for

pytestmark = pytest.mark.service


def _samples(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def test_metrics_count_jobs_attempts_and_time_requests_by_route(service, api_url, worker):
    job = wait_for(service, submit(service, TINY_LINEAR)["id"], "succeeded")
    service.get(f"/v1/jobs/{job['id']}")
    families = _samples(service)
    routes = {s.labels["route"] for s in families["trainserve_http_request_duration_seconds"]}
    assert "/v1/jobs/{job_id}" in routes and not any(job["id"] in r for r in routes)  # templates, not paths
    by_status = {s.labels["status"]: s.value for s in families["trainserve_jobs"]}
    assert by_status["succeeded"] >= 1 and set(by_status) >= {"queued", "running", "failed", "cancelled"}
    assert families["trainserve_job_attempts"][0].value >= 1
    assert "trainserve_queue_depth" in families and "trainserve_job_resumes" in families
    assert "trainserve_broker_queue_length" in families
    assert httpx.get(f"{api_url}/metrics").status_code == 401  # a key, as every other route
    # the worker's log (not a terminal) is JSON lines, and the run's lines carry its job id
    lines = [json.loads(line) for line in worker.log_text().splitlines() if line.startswith("{")]
    assert any(line["job_id"] == job["id"] for line in lines)
