"""Many users at once against a real API process: LOAD_TEST_CLIENTS (128) keep-alive clients mixing
GET /v1/jobs?limit=100, GET /v1/jobs/{id} and POST /v1/jobs for LOAD_TEST_SECONDS (30). No 5xx, no dropped
connection, and every 202 is exactly one job row (every row a 202). Prints p50/p99 per request kind.

The API runs without a worker (the jobs stay queued) on its own database (SQLite, or a fresh one on
TEST_DATABASE_URL's server) and its own Redis database, so no other test's worker trains these jobs.
"""
from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select

from core.db import session_scope
from core.keys import create_key
from core.orm import Job, Role
from tests.utils.clients import bearer
from tests.utils.databases import fresh_database
from tests.utils.jobs import TINY_LINEAR, add_finished_jobs
from tests.utils.stack import serve_api, stop_group

pytestmark = pytest.mark.service

SECONDS = float(os.environ.get("LOAD_TEST_SECONDS", "30"))
CLIENTS = int(os.environ.get("LOAD_TEST_CLIENTS", "128"))
OWNER = "loader"


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    dropped: list[str] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # Idempotency-Key → job id answered 202
    replayed: set[str] = field(default_factory=set)  # keys retried after a dropped POST
    job_ids: list[str] = field(default_factory=list)


@pytest.fixture
def load_api(tmp_path, service_env, redis_url):
    with fresh_database(tmp_path) as url:
        with session_scope(url) as session:
            key = create_key(session, owner=OWNER, role=Role.user)[1]
        add_finished_jobs(url, 150, owner=OWNER)  # full 100-job pages, with attempts and epochs to present
        env = {**service_env, "DATABASE_URL": url, "REDIS_URL": redis_url.rsplit("/", 1)[0] + "/7",
               "VAR_DIR": str(tmp_path / "var"), "MAX_QUEUED_JOBS_PER_OWNER": "1000000",
               # a shared CI box can be slow enough that 128 queued requests wait past the door's 30 s; the
               # door's own 503 is tested in test_busy_and_full.py, here nothing may fail
               "REQUEST_QUEUE_TIMEOUT_S": "240"}
        api, base = serve_api(env, tmp_path / "api.log")
        try:
            yield base, key, url
        finally:
            stop_group(api)


async def _one_client(base: str, key: str, deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)  # one keep-alive socket each
    async with httpx.AsyncClient(base_url=base, headers=bearer(key), timeout=300, limits=limits) as client:
        while time.monotonic() < deadline:
            draw = rng.random()
            if draw < 0.4:
                await _request(client, tally, "list", "GET", "/v1/jobs", params={"limit": 100})
            elif draw < 0.8:
                await _request(client, tally, "get", "GET", f"/v1/jobs/{rng.choice(tally.job_ids)}")
            else:
                await _submit(client, tally)


async def _request(client: httpx.AsyncClient, tally: Tally, kind: str, method: str, path: str,
                   **kwargs) -> httpx.Response | None:
    started = time.monotonic()
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.TransportError as exc:  # a dropped socket, a reset, a timeout
        tally.dropped.append(f"{kind}: {type(exc).__name__}")
        return None
    tally.latencies[kind].append(time.monotonic() - started)
    tally.statuses[(kind, response.status_code)] += 1
    return response


async def _submit(client: httpx.AsyncClient, tally: Tally) -> None:
    """POST a job with a fresh Idempotency-Key; after a dropped connection, retry with the same key."""
    key = str(uuid.uuid4())
    for attempt in range(3):
        response = await _request(client, tally, "post", "POST", "/v1/jobs", json=TINY_LINEAR,
                                  headers={"Idempotency-Key": key})
        if response is not None:
            break
        tally.replayed.add(key)
    else:
        return
    if response.status_code == 202:
        job_id = response.json()["id"]
        assert response.headers["Location"] == f"/v1/jobs/{job_id}"
        assert tally.accepted.setdefault(key, job_id) == job_id
        tally.job_ids.append(job_id)


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def test_many_clients_at_once_get_no_5xx_and_every_202_is_one_job(load_api, capsys):
    base, key, url = load_api
    tally = Tally()
    with httpx.Client(base_url=base, headers=bearer(key), timeout=60) as warm:
        tally.job_ids = [j["id"] for j in warm.get("/v1/jobs", params={"limit": 100}).json()["data"]]

    async def run() -> None:
        deadline = time.monotonic() + SECONDS
        await asyncio.gather(*(_one_client(base, key, deadline, tally, seed) for seed in range(CLIENTS)))

    started = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - started

    total = sum(tally.statuses.values())
    with capsys.disabled():
        print(f"\n{CLIENTS} clients for {SECONDS:g}s ({url.split(':', 1)[0]}): {total} requests, "
              f"{total / elapsed:.0f}/s; statuses {dict(sorted(tally.statuses.items()))}")
        everything = [v for values in tally.latencies.values() for v in values]
        print(f"  all: p50 {_percentile(everything, 50) * 1000:.0f} ms, "
              f"p99 {_percentile(everything, 99) * 1000:.0f} ms")
        for kind, values in sorted(tally.latencies.items()):
            print(f"  {kind}: n={len(values)} p50 {_percentile(values, 50) * 1000:.0f} ms, "
                  f"p99 {_percentile(values, 99) * 1000:.0f} ms")
    assert not tally.dropped, f"{len(tally.dropped)} dropped connections: {tally.dropped[:10]}"
    errors = {k: n for k, n in tally.statuses.items() if k[1] >= 500}
    assert not errors, f"server errors: {errors}"
    assert tally.accepted, "no submission was accepted"

    with session_scope(url) as session:
        rows = dict(session.execute(select(Job.idempotency_key, Job.id).where(
            Job.owner == OWNER, Job.idempotency_key.is_not(None))).all())
    # every 202 is exactly one row, and every row a 202 (or a retried key that was answered)
    assert rows == tally.accepted, (
        f"rows without a 202: {len(set(rows) - set(tally.accepted) - tally.replayed)}, "
        f"202s without a row: {len(set(tally.accepted) - set(rows))}")
