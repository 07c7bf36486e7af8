"""A job in a step before its first epoch (extracting features) says so in its progress, from SQL alone."""
from __future__ import annotations

from api.jobs.presenters import job_progress
from core.orm import Job, JobStatus
from core.progress import PREPARING_EPOCH


def _job(status: JobStatus, epoch: int) -> Job:
    return Job(status=status, config={"hyperparameters": {"epochs": 30}}, progress_epoch=epoch, progress_epochs=30,
               progress_batch=64, progress_batches=200, samples_per_second=16.0)


def test_a_running_job_at_epoch_zero_is_preparing_with_the_step_share_and_eta():
    progress = job_progress(_job(JobStatus.running, PREPARING_EPOCH), None)
    assert progress.note == "preparing the data 64/200"
    assert (progress.epoch, progress.batch, progress.batches, progress.fraction, progress.eta_seconds) == \
        (0, 64, 200, 0.32, 8.5)  # 136 photos left at 16 a second


def test_training_and_finished_jobs_have_no_note():
    assert job_progress(_job(JobStatus.running, 2), None).note is None
    assert job_progress(_job(JobStatus.failed, PREPARING_EPOCH), None).note is None
