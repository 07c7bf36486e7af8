"""The sweeps service on a real migrated database: slots, racing advances, ASHA ranks, reuse."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from core import jobs, sweeps
from core.orm import EpochMetric, Job, JobStatus, utcnow
from tests.core.test_jobs_service import Recorder

pytestmark = pytest.mark.service


def _plan(n: int, *, max_parallel: int = 2, asha=None, reuse=None) -> sweeps.SweepPlan:
    trials = [{"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": 9, "lr": 0.1 / (i + 1), "seed": 0}}
              for i in range(n)]
    return sweeps.SweepPlan(model="mlp", dataset="mnist", request={}, trials=trials, searched=["lr"],
                            metric="val_accuracy", max_parallel=max_parallel, asha=asha, reuse=reuse)


def _end(session, job_id: str, status: JobStatus = JobStatus.succeeded, accuracies=(0.5,)) -> None:
    for epoch, acc in enumerate(accuracies, start=1):
        session.add(EpochMetric(job_id=job_id, epoch=epoch, train_loss=1.0, val_accuracy=acc, lr=0.1, seconds=1.0,
                                samples_per_second=1.0, created_at=utcnow()))
    session.execute(update(Job).where(Job.id == job_id).values(status=status, finished_at=utcnow(),
                                                                code_version="v1", dataset_checksum="c1"))
    session.commit()


def test_at_most_max_parallel_trials_are_jobs_and_a_free_slot_launches_the_next(db_session):
    broker = Recorder()
    sweep = sweeps.create(db_session, plan=_plan(5), dispatcher=broker)
    assert sweep.launched == 2 and len(broker.sent) == 2
    sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)  # no slot free: nothing happens
    assert len(broker.sent) == 2
    _end(db_session, broker.sent[0])
    sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)
    sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)  # a second advance finds no slot
    assert len(broker.sent) == 3 and sweeps.get_sweep(db_session, sweep_id=sweep.id).status == "running"
    for job_id in broker.sent[1:]:
        _end(db_session, job_id, accuracies=(0.9,))
    while sweeps.get_sweep(db_session, sweep_id=sweep.id).launched < 5:
        sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)
        for job_id in broker.sent[3:]:
            if db_session.get(Job, job_id).status == "queued":
                _end(db_session, job_id, accuracies=(0.7,))
    done = sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)
    assert done.status == "succeeded" and done.best_job_id == broker.sent[1]
    board = sweeps.leaderboard(db_session, done)
    assert [t.metric for t in board] == [0.9, 0.9, 0.7, 0.7, 0.5]


def test_the_best_job_id_is_the_leader_so_far_while_the_sweep_runs(db_session):
    broker = Recorder()
    sweep = sweeps.create(db_session, plan=_plan(3, max_parallel=2), dispatcher=broker)
    first, second = broker.sent
    assert sweeps.current_best_job_id(sweep, sweeps.leaderboard(db_session, sweep)) is None  # no metric yet
    _end(db_session, first, JobStatus.running, accuracies=(0.6,))  # one epoch in: it leads already
    assert sweeps.current_best_job_id(sweep, sweeps.leaderboard(db_session, sweep)) == first
    _end(db_session, second, accuracies=(0.8,))
    running = sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)  # a slot: the third launches
    assert running.status == "running" and running.best_job_id == second  # stored as each trial settles
    _end(db_session, first, JobStatus.failed, accuracies=())
    _end(db_session, second, JobStatus.failed, accuracies=())  # a failed trial never leads
    board = sweeps.leaderboard(db_session, running)
    assert sweeps.current_best_job_id(running, board) is None
    assert sweeps.leading_job(board, final=True) is None


def test_a_stale_advance_cannot_launch_a_trial_twice(db_session, db_engine):
    from sqlalchemy.orm import sessionmaker

    broker = Recorder()
    sweep = sweeps.create(db_session, plan=_plan(4, max_parallel=2), dispatcher=broker)
    for job_id in broker.sent:
        _end(db_session, job_id)
    other = sessionmaker(bind=db_engine)()
    stale = sweeps.get_sweep(other, sweep_id=sweep.id)  # read launched=2 before the first advance commits
    sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)
    for job_id in broker.sent[2:]:
        _end(db_session, job_id)  # so the stale reader sees free slots and trials it thinks are waiting
    assert sweeps._launch(other, stale) is None  # the conditional UPDATE matched nothing
    other.rollback()
    other.close()
    assert len(broker.sent) == 4 and db_session.query(Job).filter(Job.sweep_id == sweep.id).count() == 4


def test_asha_keeps_the_top_third_at_a_rung(db_session):
    broker = Recorder()
    sweep = sweeps.create(db_session, plan=_plan(6, max_parallel=6, asha={"grace_epochs": 1, "reduction_factor": 3}),
                          dispatcher=broker)
    assert sweeps.rungs(sweep.asha, 9) == [1, 3]
    first, *others = broker.sent
    _end(db_session, first, JobStatus.running, accuracies=(0.5,))
    assert sweeps.early_stop_reason(db_session, job_id=first, epoch=1) is None  # alone at the rung
    assert sweeps.early_stop_reason(db_session, job_id=first, epoch=2, after=1) is None  # no rung in (1, 2]
    for job_id, acc in zip(others, (0.9, 0.8, 0.4, 0.3, 0.2)):
        _end(db_session, job_id, JobStatus.running, accuracies=(acc,))
    decide = {job_id: sweeps.early_stop_reason(db_session, job_id=job_id, epoch=1) for job_id in broker.sent}
    assert [decide[j] is None for j in broker.sent] == [False, True, True, False, False, False]  # 6 // 3 = 2 go on
    assert "ranked 3 of the 6" in decide[first]


def test_reuse_takes_a_succeeded_trials_result_only_when_every_input_matches(db_session):
    broker = Recorder()
    sweep = sweeps.create(db_session, plan=_plan(2), dispatcher=broker)
    for job_id in list(broker.sent):
        _end(db_session, job_id, accuracies=(0.6, 0.8))
        db_session.execute(update(Job).where(Job.id == job_id).values(best_metric={"name": "val_accuracy",
                                                                                     "value": 0.8}))
    db_session.commit()
    sweeps.advance(db_session, sweep_id=sweep.id, dispatcher=broker)
    again = sweeps.create(db_session, plan=_plan(2, reuse=jobs.Reuse("c1", "v1")), dispatcher=broker)
    assert again.status == "succeeded" and len(broker.sent) == 2  # nothing was sent to train
    copies = sweeps.trial_jobs(db_session, sweep_id=again.id)
    assert [c.reused_from for c in copies] == broker.sent
    assert [len(jobs.list_epoch_metrics(db_session, job_id=c.id)) for c in copies] == [2, 2]
    other_code = sweeps.create(db_session, plan=_plan(2, reuse=jobs.Reuse("c1", "v2")), dispatcher=broker)
    assert other_code.status == "queued" and len(broker.sent) == 4
