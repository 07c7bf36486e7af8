"""Service functions on a real migrated database: state changes are conditional and atomic."""
from __future__ import annotations

import pytest

from core import jobs
from core.errors import IdempotencyConflict, JobNotCancellable, JobNotFound
from core.models import JobStatus

pytestmark = pytest.mark.service

CONFIG = {"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": 2, "seed": 7}}


def _new_job(session, **kw):
    job, created = jobs.create_job(session, config=CONFIG, **kw)
    assert created
    return job


def test_a_job_is_claimed_once(db_session):
    job = _new_job(db_session)
    assert job.seed == 7 and job.status == "queued"
    assert jobs.claim_job(db_session, job_id=job.id, worker="w1@host", code_version="v") is True
    assert jobs.claim_job(db_session, job_id=job.id, worker="w2@host", code_version="v") is False
    db_session.refresh(job)
    assert job.status == "running" and job.worker == "w1@host" and job.started_at is not None


def test_a_cancelled_queued_job_cannot_be_claimed(db_session):
    job = _new_job(db_session)
    assert jobs.request_cancel(db_session, job_id=job.id).status == "cancelled"
    assert jobs.claim_job(db_session, job_id=job.id, worker="w@h", code_version="v") is False
    assert jobs.get_job(db_session, job_id=job.id).started_at is None


def test_cancelling_a_running_job_flags_it_and_progress_reports_the_flag(db_session):
    job = _new_job(db_session)
    jobs.claim_job(db_session, job_id=job.id, worker="w@h", code_version="v")
    assert jobs.record_progress(db_session, job_id=job.id, epoch=1, epochs=2, batch=3, batches=10,
                                samples_per_second=100.0) is False
    flagged = jobs.request_cancel(db_session, job_id=job.id)
    assert flagged.status == "running" and flagged.cancel_requested_at is not None
    assert jobs.record_progress(db_session, job_id=job.id, epoch=1, epochs=2, batch=4, batches=10,
                                samples_per_second=100.0) is True


def test_only_a_running_job_finishes_and_a_finished_one_cannot_be_cancelled(db_session):
    job = _new_job(db_session)
    assert jobs.finish_job(db_session, job_id=job.id, status=JobStatus.succeeded) is False
    jobs.claim_job(db_session, job_id=job.id, worker="w@h", code_version="v")
    assert jobs.finish_job(db_session, job_id=job.id, status=JobStatus.succeeded, best_epoch=2) is True
    assert jobs.finish_job(db_session, job_id=job.id, status=JobStatus.failed, error="x") is False
    db_session.refresh(job)
    assert job.status == "succeeded" and job.best_epoch == 2 and job.error is None
    with pytest.raises(JobNotCancellable, match="already succeeded"):
        jobs.request_cancel(db_session, job_id=job.id)


def test_epoch_and_checkpoint_rows_are_one_per_epoch_with_a_single_best(db_session):
    job = _new_job(db_session)
    jobs.claim_job(db_session, job_id=job.id, worker="w@h", code_version="v")
    for epoch, best in ((1, True), (2, True), (3, False)):
        jobs.record_epoch(db_session, job_id=job.id, metrics={
            "epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.0, "lr": 0.1, "seconds": 1.0,
            "samples_per_second": 10.0, "val_accuracy": 0.5})
        jobs.record_checkpoint(db_session, job_id=job.id, epoch=epoch, path=f"/x/epoch-{epoch:03d}.pt",
                               sha256="0" * 64, size_bytes=10, is_best=best, metrics={})
    # a re-run epoch (resume) replaces its row instead of adding one
    jobs.record_epoch(db_session, job_id=job.id, metrics={
        "epoch": 3, "train_loss": 0.1, "val_loss": 1.0, "lr": 0.1, "seconds": 1.0, "samples_per_second": 10.0})
    rows = jobs.list_epoch_metrics(db_session, job_id=job.id)
    assert [r.epoch for r in rows] == [1, 2, 3] and rows[-1].train_loss == pytest.approx(0.1)
    assert [c.is_best for c in jobs.list_checkpoints(db_session, job_id=job.id)] == [False, True, False]
    assert jobs.get_job(db_session, job_id=job.id).best_epoch == 2
    jobs.mark_best_checkpoint(db_session, job_id=job.id, path="/x/epoch-001.pt")
    assert [c.is_best for c in jobs.list_checkpoints(db_session, job_id=job.id)] == [True, False, False]


def test_idempotency_key_reuse(db_session):
    job, created = jobs.create_job(db_session, config=CONFIG, idempotency_key="k-1", request_hash="a")
    again, created_again = jobs.create_job(db_session, config=CONFIG, idempotency_key="k-1", request_hash="a")
    assert created and not created_again and again.id == job.id
    with pytest.raises(IdempotencyConflict):
        jobs.create_job(db_session, config=CONFIG, idempotency_key="k-1", request_hash="b")


def test_abandoned_running_jobs_of_a_restarted_worker_are_failed(db_session):
    mine, other = _new_job(db_session), _new_job(db_session)
    jobs.claim_job(db_session, job_id=mine.id, worker="gone@host", code_version="v")
    jobs.claim_job(db_session, job_id=other.id, worker="alive@host", code_version="v")
    assert jobs.fail_abandoned_jobs(db_session, worker="gone@host") == [mine.id]
    db_session.expire_all()
    assert jobs.get_job(db_session, job_id=mine.id).status == "failed"
    assert jobs.get_job(db_session, job_id=other.id).status == "running"


def test_unknown_job(db_session):
    with pytest.raises(JobNotFound, match="nope"):
        jobs.get_job(db_session, job_id="nope")
