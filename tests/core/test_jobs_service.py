"""The jobs service on a real migrated database: transitions are conditional, atomic, and announced after commit."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from core import jobs
from core.artifacts.local import LocalStore
from core.errors import BrokerUnavailable, IdempotencyConflict, JobNotCancellable, JobNotDeletable, JobNotFound
from core.db import make_engine
from core.migrate import upgrade
from core.model_registry import promote, register_model_version
from core.orm import AttemptEnd, Job, JobStatus, utcnow

pytestmark = pytest.mark.service

CONFIG = {"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": 4, "seed": 7}}


class Recorder:
    """A Dispatcher and Publisher that keeps what it was given (a real implementation, for the test)."""

    def __init__(self, fail: bool = False):
        self.sent: list[str] = []
        self.ahead: list[str] = []  # the ones sent before fresh jobs: they were queued once already
        self.events: list[tuple[str, str, dict]] = []
        self.flags: list[str] = []
        self.fail = fail

    def enqueue(self, job_id: str, *, ahead: bool = False) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append(job_id)
        if ahead:
            self.ahead.append(job_id)

    def publish(self, job_id: str, kind: str, data: dict) -> None:
        self.events.append((job_id, kind, data))

    def raise_cancel_flag(self, job_id: str) -> None:
        self.flags.append(job_id)


def _new_job(session, broker=None, **kw):
    job, created = jobs.submit(session, config=CONFIG, dispatcher=broker or Recorder(), **kw)
    assert created
    return job


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def _stored(store, key: str) -> None:
    source = store.root.parent / "source"
    source.write_bytes(b"x" * 10)
    store.put(key, source)


def _epoch(session, job_id, epoch, store, best=True):
    metrics = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.0, "lr": 0.1, "seconds": 1.0,
               "samples_per_second": 10.0, "val_accuracy": 0.5}
    key = f"jobs/{job_id}/epoch-{epoch:03d}.pt"
    _stored(store, key)
    jobs.report_checkpoint(session, job_id=job_id, epoch=epoch, path=key, sha256="0" * 64, size_bytes=10,
                           is_best=best, metrics={}, epochs=[metrics])


def test_submit_sends_the_id_and_a_broker_failure_fails_the_job(db_session):
    broker = Recorder()
    job = _new_job(db_session, broker)
    assert broker.sent == [job.id] and job.status == "queued" and job.seed == 7
    with pytest.raises(BrokerUnavailable, match="broker is unreachable"):
        jobs.submit(db_session, config=CONFIG, dispatcher=Recorder(fail=True))


def test_a_job_is_started_once_and_opens_an_attempt(db_session):
    job = _new_job(db_session)
    bus = Recorder()
    run = jobs.start(db_session, job_id=job.id, worker="w1@host", code_version="v", publisher=bus)
    assert run is not None and run.attempt == 1 and run.resume_from is None
    assert jobs.start(db_session, job_id=job.id, worker="w2@host", code_version="v") is None
    db_session.refresh(job)
    assert job.status == "running" and job.worker == "w1@host" and job.heartbeat_at is not None
    assert [(a.number, a.worker, a.ended) for a in jobs.list_attempts(db_session, job_id=job.id)] == [(1, "w1@host", None)]
    assert bus.events[0][1:] == ("status", {"status": "running", "attempt": 1, "worker": "w1@host",
                                            "resumed_from_epoch": None, "resumed_from_batch": None})


def test_a_cancelled_queued_job_cannot_be_started(db_session):
    job = _new_job(db_session)
    bus = Recorder()
    assert jobs.cancel(db_session, job_id=job.id, publisher=bus).status == "cancelled"
    assert bus.events[-1][2]["status"] == "cancelled"
    assert jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v") is None
    assert jobs.get_job(db_session, job_id=job.id).started_at is None


def test_cancelling_a_running_job_flags_it_and_progress_reports_the_flag(db_session):
    job = _new_job(db_session)
    jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
    assert jobs.report_progress(db_session, job_id=job.id, epoch=1, epochs=2, batch=3, batches=10,
                                samples_per_second=100.0) is False
    bus = Recorder()
    flagged = jobs.cancel(db_session, job_id=job.id, publisher=bus)
    assert flagged.status == "running" and flagged.cancel_requested_at is not None and bus.flags == [job.id]
    assert jobs.report_progress(db_session, job_id=job.id, epoch=1, epochs=2, batch=4, batches=10,
                                samples_per_second=100.0) is True


def test_only_a_running_job_finishes_and_a_finished_one_cannot_be_cancelled(db_session):
    job = _new_job(db_session)
    assert jobs.finish(db_session, job_id=job.id, status=JobStatus.succeeded) is False
    jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
    assert jobs.finish(db_session, job_id=job.id, worker="other@h", status=JobStatus.succeeded) is False
    assert jobs.finish(db_session, job_id=job.id, worker="w@h", status=JobStatus.succeeded,
                       outcome=jobs.Outcome(best_epoch=2)) is True
    assert jobs.finish(db_session, job_id=job.id, status=JobStatus.failed, error="x") is False
    db_session.refresh(job)
    assert job.status == "succeeded" and job.best_epoch == 2 and job.error is None
    assert jobs.list_attempts(db_session, job_id=job.id)[0].ended == "succeeded"
    with pytest.raises(JobNotCancellable, match="already succeeded"):
        jobs.cancel(db_session, job_id=job.id)


def test_a_requeued_job_resumes_from_its_last_checkpoint_and_forgets_later_rows(db_session, store):
    job = _new_job(db_session)
    jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
    for epoch in (1, 2):
        _epoch(db_session, job.id, epoch, store, best=epoch == 1)
    # epoch 3 finished but its checkpoint never made it to the store
    jobs.report_epochs(db_session, job_id=job.id, epochs=[{"epoch": 3, "train_loss": 1, "lr": 0.1, "seconds": 1,
                                                           "samples_per_second": 1}])
    broker = Recorder()
    status = jobs.requeue(db_session, job_id=job.id, worker="w@h", ended=AttemptEnd.process_died,
                          detail="killed", max_attempts=3, dispatcher=broker)
    assert status is JobStatus.queued and broker.sent == broker.ahead == [job.id]
    run = jobs.start(db_session, job_id=job.id, worker="other@h", code_version="v", store=store)
    assert run.attempt == 2 and run.resume_epoch == 2 and run.resume_from == f"jobs/{job.id}/epoch-002.pt"
    assert run.resume_sha256 == "0" * 64
    assert [r.epoch for r in jobs.list_epoch_metrics(db_session, job_id=job.id)] == [1, 2]
    attempts = jobs.list_attempts(db_session, job_id=job.id)
    assert [(a.ended, a.resumed_from_epoch) for a in attempts] == [("process_died", None), (None, 2)]


def test_crashes_up_to_max_attempts_fail_the_job_with_its_history_but_graceful_stops_do_not_count(db_session):
    job = _new_job(db_session)
    for n, ended in enumerate([AttemptEnd.worker_stopped, AttemptEnd.process_died, AttemptEnd.worker_lost]):
        jobs.start(db_session, job_id=job.id, worker=f"w{n}@h", code_version="v")
        assert jobs.requeue(db_session, job_id=job.id, ended=ended, detail=f"reason {n}", max_attempts=2,
                            dispatcher=None) is (JobStatus.failed if n == 2 else JobStatus.queued)
    db_session.refresh(job)
    assert job.status == "failed" and job.error_type == "TooManyAttempts"
    assert "attempt 2 on w1@h: process_died (reason 1)" in job.error and "attempt 3 on w2@h: worker_lost" in job.error
    assert "memory" not in job.error  # nothing said the process was killed or ran out of memory


@pytest.mark.parametrize("ended, detail, says", [
    (AttemptEnd.worker_restarted, "worker w restarted while it ran", None),
    (AttemptEnd.worker_lost, "worker w not seen for over 30s", None),
    (AttemptEnd.process_died, "the training process was killed by SIGKILL (signal 9 (SIGKILL))",
     "killed (SIGKILL), which is often the kernel's out-of-memory killer"),
    (AttemptEnd.process_died, "out of memory: the kernel's OOM killer ended the training process (…)",
     "the training ran out of memory"),
])
def test_a_job_given_up_says_what_happened_and_mentions_memory_only_when_likely(db_session, ended, detail, says):
    job = _new_job(db_session)
    for n in range(2):
        jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
        jobs.requeue(db_session, job_id=job.id, ended=ended, detail=detail, max_attempts=2, dispatcher=None)
    db_session.refresh(job)
    assert job.status == "failed" and f"attempt 2 on w@h: {ended} ({detail})" in job.error
    if says is None:
        assert "memory" not in job.error
    else:
        assert says in job.error


def test_a_requeued_job_whose_cancel_was_requested_ends_cancelled(db_session):
    job = _new_job(db_session)
    jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
    jobs.cancel(db_session, job_id=job.id)
    assert jobs.requeue(db_session, job_id=job.id, ended=AttemptEnd.worker_lost, detail="gone", max_attempts=3,
                        dispatcher=None) is JobStatus.cancelled


def test_stale_jobs_are_requeued_and_a_restarted_worker_requeues_its_own(db_session):
    stale, fresh, mine = _new_job(db_session), _new_job(db_session), _new_job(db_session)
    for job, worker in ((stale, "gone@a"), (fresh, "alive@b"), (mine, "back@c")):
        jobs.start(db_session, job_id=job.id, worker=worker, code_version="v")
    db_session.execute(update(Job).where(Job.id == stale.id).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    db_session.commit()
    assert jobs.requeue_stale(db_session, timeout_s=60, max_attempts=3, dispatcher=None) == [stale.id]
    assert jobs.requeue_worker_jobs(db_session, worker="back@c", max_attempts=3, dispatcher=None) == [mine.id]
    db_session.expire_all()
    assert [jobs.get_job(db_session, job_id=j.id).status for j in (stale, fresh, mine)] == ["queued", "running", "queued"]
    assert jobs.heartbeat(db_session, job_id=stale.id, worker="gone@a") is False  # its old process must stop
    assert jobs.heartbeat(db_session, job_id=fresh.id, worker="alive@b") is True


def test_queued_jobs_the_broker_lost_are_sent_again(db_session):
    held, lost = _new_job(db_session), _new_job(db_session)
    db_session.execute(update(Job).where(Job.id.in_([held.id, lost.id]))
                       .values(queued_at=utcnow() - timedelta(seconds=30)))
    db_session.commit()
    broker = Recorder()
    assert lost.id in jobs.resend_lost(db_session, known={held.id}, min_age_s=10, dispatcher=broker)
    assert held.id not in broker.sent and lost.id in broker.sent
    # just re-sent: not again at once
    assert lost.id not in jobs.resend_lost(db_session, known=set(), min_age_s=10, dispatcher=broker)


def test_retention_keeps_the_best_and_the_last_n_checkpoints(db_session, store):
    job = _new_job(db_session)
    jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
    for epoch in (1, 2, 3, 4):
        _epoch(db_session, job.id, epoch, store, best=epoch == 1)
    assert jobs.finish(db_session, job_id=job.id, status=JobStatus.succeeded, retention=1, store=store) is True
    assert [c.epoch for c in jobs.list_checkpoints(db_session, job_id=job.id)] == [1, 4]
    assert [o.key.rsplit("/", 1)[1] for o in store.list(f"jobs/{job.id}/")] == ["epoch-001.pt", "epoch-004.pt"]


def test_delete_refuses_running_jobs_and_removes_rows_and_files(db_session, store):
    job = _new_job(db_session)
    jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
    with pytest.raises(JobNotDeletable, match="running; cancel it first"):
        jobs.delete(db_session, job_id=job.id, store=store)
    jobs.finish(db_session, job_id=job.id, status=JobStatus.failed, error="x")
    _stored(store, f"jobs/{job.id}/epoch-001.pt")
    _stored(store, f"jobs/{job.id}/mistakes.png")
    jobs.delete(db_session, job_id=job.id, store=store)
    assert store.list(f"jobs/{job.id}/") == [] and not (store.root / "jobs" / job.id).exists()
    with pytest.raises(JobNotFound):
        jobs.get_job(db_session, job_id=job.id)


def test_idempotency_key_reuse(db_session):
    job, created = jobs.submit(db_session, config=CONFIG, dispatcher=Recorder(), idempotency_key="k-1",
                               request_hash="a")
    again, created_again = jobs.submit(db_session, config=CONFIG, dispatcher=Recorder(), idempotency_key="k-1",
                                       request_hash="a")
    assert created and not created_again and again.id == job.id
    with pytest.raises(IdempotencyConflict):
        jobs.submit(db_session, config=CONFIG, dispatcher=Recorder(), idempotency_key="k-1", request_hash="b")


def test_unknown_job(db_session):
    with pytest.raises(JobNotFound, match="nope"):
        jobs.get_job(db_session, job_id="nope")


def test_a_job_whose_model_serves_cannot_be_deleted_and_the_error_names_the_model(tmp_path, store):
    url = f"sqlite:///{tmp_path / 'own.db'}"  # its own database: serving a fake model must not leak
    upgrade(url)
    session = sessionmaker(bind=make_engine(url), expire_on_commit=False)()
    job = _new_job(session)
    jobs.start(session, job_id=job.id, worker="w@h", code_version="v")
    _epoch(session, job.id, 1, store)
    assert jobs.finish(session, job_id=job.id, status=JobStatus.succeeded,
                       outcome=jobs.Outcome(best_epoch=1, best_metric={"name": "val_accuracy", "value": 0.9}),
                       on_succeeded=lambda s, j: register_model_version(s, job=j)) is True
    version = register_model_version(session, job=job)  # already registered: the same version
    promote(session, model_id=version.id)  # no split on record, so serving only by hand
    session.commit()
    with pytest.raises(JobNotDeletable, match=r"its model mlp #\d+ \(mnist\) serves predictions"):
        jobs.delete(session, job_id=job.id, store=store)
    assert store.exists(f"jobs/{job.id}/epoch-001.pt")  # refused before any file went
    session.close()


def test_a_gracefully_stopped_job_resumes_from_its_mid_epoch_checkpoint_which_goes_when_it_finishes(db_session, store):
    job = _new_job(db_session)
    jobs.start(db_session, job_id=job.id, worker="w@h", code_version="v")
    _epoch(db_session, job.id, 1, store)
    stop = f"jobs/{job.id}/stopped-epoch-002.pt"
    _stored(store, stop)
    jobs.requeue(db_session, job_id=job.id, worker="w@h", ended=AttemptEnd.worker_stopped, detail="SIGTERM",
                 max_attempts=3, dispatcher=None, stopped_at=jobs.StoppedAt(stop, 2, 17))
    run = jobs.start(db_session, job_id=job.id, worker="w2@h", code_version="v", store=store)
    assert (run.resume_from, run.resume_epoch) == (stop, 1)
    assert jobs.list_attempts(db_session, job_id=job.id)[1].resumed_from_batch == 17
    assert jobs.finish(db_session, job_id=job.id, status=JobStatus.succeeded, store=store) is True
    assert not store.exists(stop) and store.exists(f"jobs/{job.id}/epoch-001.pt")


def test_reuse_matches_the_feedback_snapshot_too(db_session):
    """A job trained on a feedback snapshot is reused only by a submit with the same snapshot, never by one without."""
    config = {**CONFIG, "hyperparameters": {**CONFIG["hyperparameters"], "seed": 4242}}
    snapshot = {"prediction_ids": ["a"], "count": 1, "sha256": "f" * 64}
    source = jobs.add_job(db_session, config=config, feedback=snapshot)
    source.status, source.finished_at, source.dataset_checksum, source.code_version = (
        JobStatus.succeeded, utcnow(), "d" * 64, "test-code")
    db_session.commit()
    reuse = jobs.Reuse(dataset_checksum="d" * 64, code_version="test-code")
    assert jobs.find_reusable(db_session, config=config, reuse=reuse) is None  # no feedback: other data
    same = jobs.Reuse(dataset_checksum="d" * 64, code_version="test-code", feedback_sha256="f" * 64)
    assert jobs.find_reusable(db_session, config=config, reuse=same).id == source.id
    other = jobs.Reuse(dataset_checksum="d" * 64, code_version="test-code", feedback_sha256="e" * 64)
    assert jobs.find_reusable(db_session, config=config, reuse=other) is None
