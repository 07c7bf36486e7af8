"""A page of jobs costs a fixed number of SQL statements whatever its size (no query per listed job)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.db import get_engine, session_scope
from core.keys import create_key
from core.orm import Role
from core.settings import Settings
from tests.utils.clients import bearer
from tests.utils.databases import fresh_database
from tests.utils.jobs import add_finished_jobs
from tests.utils.sql import statements


@pytest.fixture
def app_with_jobs(tmp_path):
    from api.main import create_app
    from ml.data.registry import use_uploaded_datasets

    with fresh_database(tmp_path) as url:  # SQLite, or PostgreSQL with TEST_DATABASE_URL
        with session_scope(url) as session:
            key = create_key(session, owner="alice", role=Role.user)[1]
        add_finished_jobs(url, 100, owner="alice")
        try:
            with TestClient(create_app(Settings(database_url=url, redis_url=None))) as client:
                client.headers.update(bearer(key))
                yield client, get_engine(url)
        finally:
            use_uploaded_datasets(None)  # create_app installs the DB lookup process-wide
            get_engine(url).dispose()  # PostgreSQL drops the database only once nothing is connected



def test_a_page_of_100_jobs_costs_at_most_5statements(app_with_jobs):
    client, engine = app_with_jobs
    response, seen = statements(engine, lambda: client.get("/v1/jobs", params={"limit": 100}))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["count"] == 100 and len(page["data"]) == 100
    print(f"\nGET /v1/jobs?limit=100: {len(seen)} SQL statements")
    assert len(seen) <= 5, "\n".join(seen)
    # and the page still says what each job's presenter used to read row by row
    job = page["data"][0]
    assert [a["number"] for a in job["attempts"]] == [1, 2]
    assert job["latest_metrics"]["epoch"] == 5 and job["best"]["epoch"] == 3
    assert job["best"]["metrics"]["epoch"] == 3


def test_a_page_costs_the_same_statements_at_1_and_100_jobs(app_with_jobs):
    client, engine = app_with_jobs
    client.get("/v1/me")  # the key verified once: both pages find it remembered
    _, one = statements(engine, lambda: client.get("/v1/jobs", params={"limit": 1}))
    _, hundred = statements(engine, lambda: client.get("/v1/jobs", params={"limit": 100}))
    assert len(one) == len(hundred)


def test_one_job_reads_its_attempts_once(app_with_jobs):
    client, engine = app_with_jobs
    job_id = client.get("/v1/jobs", params={"limit": 1}).json()["data"][0]["id"]
    response, seen = statements(engine, lambda: client.get(f"/v1/jobs/{job_id}"))
    assert response.status_code == 200
    assert sum("job_attempts" in s for s in seen) == 1, seen
    assert sum("epoch_metrics" in s for s in seen) == 1, seen


def _add_sweeps(url: str, n: int) -> None:
    """`n` sweeps of 3 trials: 2 launched (epoch rows; the second is best), 1 waiting."""
    import uuid

    from core.orm import EpochMetric, Job, JobStatus, Sweep, utcnow

    now = utcnow()
    with session_scope(url) as session:
        for i in range(n):
            sweep = Sweep(id=str(uuid.uuid4()), model="mlp", dataset="mnist", owner="alice", request={},
                          trials=[{"hyperparameters": {"lr": lr}} for lr in (0.1, 0.01, 0.001)], searched=["lr"],
                          metric="val_accuracy", mode="max", max_parallel=2, launched=2, created_at=now)
            session.add(sweep)
            session.flush()  # sweeps and jobs name each other: the sweep first, its best job after
            for trial in (0, 1):
                job = Job(id=str(uuid.uuid4()), model="mlp", dataset="mnist", seed=0, owner="alice",
                          config={"hyperparameters": {"lr": 0.1 / 10**trial}}, status=JobStatus.succeeded,
                          sweep_id=sweep.id, trial=trial, created_at=now)
                job.epoch_metrics = [EpochMetric(epoch=e, train_loss=1.0, val_accuracy=0.5 + trial / 10 + e / 100,
                                                 lr=0.1, seconds=1.0, samples_per_second=1.0) for e in (1, 2, 3)]
                session.add(job)
                if trial == 1:
                    session.flush()
                    sweep.best_job_id = job.id
        session.commit()


def test_a_page_of_sweeps_costs_the_same_statements_whatever_its_size(app_with_jobs):
    client, engine = app_with_jobs
    url = engine.url.render_as_string(hide_password=False)
    _add_sweeps(url, 1)
    client.get("/v1/me")
    _, one = statements(engine, lambda: client.get("/v1/sweeps", params={"limit": 100}))
    _add_sweeps(url, 30)
    response, many = statements(engine, lambda: client.get("/v1/sweeps", params={"limit": 100}))
    assert response.json()["count"] == 31
    print(f"\nGET /v1/sweeps?limit=100 (31 sweeps): {len(many)} SQL statements")
    assert len(one) == len(many) <= 7, "\n".join(many)
    # the page says what each sweep's own view says (that one goes through the leaderboard)
    for summary in response.json()["data"][:3]:
        full = client.get(f"/v1/sweeps/{summary['id']}").json()
        assert summary["best"] == full["best"] and summary["best"]["trial"] == 1 and summary["best"]["epoch"] == 3
        assert summary["counts"] == full["counts"] == {"succeeded": 2, "waiting": 1}
