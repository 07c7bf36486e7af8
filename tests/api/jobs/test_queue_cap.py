"""MAX_QUEUED_JOBS_PER_OWNER holds under concurrent submits: 100 at once from one owner over real HTTP,
on the suite's database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from core.orm import Job, JobAttempt, JobStatus
from tests.utils.clients import api_client
from tests.utils.jobs import TINY_LINEAR

pytestmark = pytest.mark.service

SUBMITS = 100


def test_a_hundred_concurrent_submits_from_one_owner_admit_at_most_the_cap(api_url, make_key, service_settings,
                                                                          db_session):
    cap = service_settings.max_queued_jobs_per_owner
    assert cap < SUBMITS
    owner = "cap-racer"
    with api_client(api_url, make_key(owner), timeout=120) as racer:
        with ThreadPoolExecutor(max_workers=SUBMITS) as pool:
            statuses = list(pool.map(lambda _: racer.post("/v1/jobs", json=TINY_LINEAR).status_code,
                                     range(SUBMITS)))
        accepted = statuses.count(202)
        # a worker of the session (when another test started one) may have taken some off the queue meanwhile,
        # freeing their places: those are the only submits beyond the cap that may be admitted
        started = db_session.scalar(select(func.count(func.distinct(JobAttempt.job_id))).join(
            Job, Job.id == JobAttempt.job_id).where(Job.owner == owner)) or 0
        rows = db_session.scalar(select(func.count()).select_from(Job).where(Job.owner == owner))
        try:
            assert sorted(set(statuses)) <= [202, 429], statuses  # never a 5xx
            assert accepted == rows  # every 202 is exactly one job row
            assert cap <= accepted <= cap + started, (accepted, cap, started)
            assert statuses.count(429) == SUBMITS - accepted
            print(f"\n{SUBMITS} concurrent submits, cap {cap}: {accepted} accepted, {statuses.count(429)} × 429 "
                  f"({db_session.get_bind().dialect.name})")
        finally:
            queued = db_session.scalars(select(Job.id).where(Job.owner == owner, Job.status == JobStatus.queued))
            for job_id in queued.all():  # leave nothing for the session's worker
                racer.post(f"/v1/jobs/{job_id}/cancel")
