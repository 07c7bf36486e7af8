"""The broker only delivers: a second delivery of a job that is finished or running does nothing."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from core.orm import Checkpoint, EpochMetric, Job
from core.queue import TRAIN_TASK, make_celery
from tests.utils.jobs import TINY_MNIST, submit, wait_for

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def celery_client(service_settings):
    app = make_celery(service_settings)
    yield app
    app.close()


def _snapshot(session, job_id: str) -> tuple:
    session.expire_all()
    job = session.get(Job, job_id)
    epochs = session.scalar(select(func.count()).select_from(EpochMetric).where(EpochMetric.job_id == job_id))
    ckpts = session.scalar(select(func.count()).select_from(Checkpoint).where(Checkpoint.job_id == job_id))
    return job.status, job.started_at, job.finished_at, job.worker, epochs, ckpts


def test_duplicate_delivery_of_a_finished_job_does_nothing(service, celery_client, db_session):
    job = submit(service, TINY_MNIST)
    wait_for(service, job["id"], "succeeded")
    before = _snapshot(db_session, job["id"])

    result = celery_client.send_task(TRAIN_TASK, args=[job["id"]], task_id=str(uuid.uuid4()))
    outcome = result.get(timeout=60)
    assert outcome == {"job_id": job["id"], "outcome": "skipped", "status": "succeeded"}
    assert _snapshot(db_session, job["id"]) == before


def test_delivery_of_an_unknown_job_does_nothing(worker, celery_client):
    missing = str(uuid.uuid4())
    outcome = celery_client.send_task(TRAIN_TASK, args=[missing], task_id=str(uuid.uuid4())).get(timeout=60)
    assert outcome == {"job_id": missing, "outcome": "skipped", "status": None}
