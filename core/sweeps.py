"""The sweeps service: create, advance (launch waiting trials into free slots, finish), cancel, and ASHA.

A sweep's trials wait in its row (`trials`, resolved configs) and become jobs through `core.jobs` when
a slot frees: at most `max_parallel` of its jobs are queued or running. `advance` runs when a trial
ends (the worker) and in the maintenance pass (so a crash anywhere never strands a sweep); it claims
trials with one conditional UPDATE of `launched`, so racing callers never launch a trial twice (and
(sweep_id, trial) is unique on jobs besides). Same transaction rule as core.jobs: helpers flush, each
public function commits once, then hands ids to the Dispatcher. A sweep publishes no events of its
own: its trials' transitions do (core.jobs), and the sweep's stream reads SQL.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import jobs
from core.bus import NoPublisher, Publisher
from core.db import newest_page
from core.errors import BrokerUnavailable, ServiceError, SweepNotCancellable, SweepNotFound
from core.ids import as_prefix, ids_starting_with
from core.orm import EpochMetric, Job, JobStatus, ModelVersion, Sweep, SweepStatus, utcnow

_QUIET = NoPublisher()
ACTIVE = (JobStatus.queued, JobStatus.running)
# metrics a sweep can rank by, and which way is better
METRIC_MODES = {"val_accuracy": "max", "val_r2": "max", "val_loss": "min", "val_mse": "min"}


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep request: every trial's resolved config and how to run them."""

    model: str
    dataset: str
    request: dict[str, Any]
    trials: list[dict[str, Any]]
    searched: list[str]
    metric: str
    max_parallel: int
    asha: dict[str, int] | None = None
    reuse: jobs.Reuse | None = None
    name: str | None = None
    owner: str | None = None  # the key's owner: the sweep and every trial job are theirs


@dataclass(frozen=True)
class Trial:
    """One leaderboard row: a trial, its job (None while it waits), its searched values and best metric."""

    trial: int
    job_id: str | None
    status: str
    hyperparameters: dict[str, Any]
    metric: float | None
    epoch: int | None
    reused_from: str | None = None


# ---------------------------------------------------------------- reading


def get_sweep(session: Session, *, sweep_id: str, owner: str | None = None) -> Sweep:
    """The sweep with this id or id prefix (core/ids.py), as the database has it now; raises SweepNotFound
    (also when `owner` is given and the sweep is someone else's: ids of others' sweeps don't leak), AmbiguousId."""
    sweep = session.get(Sweep, sweep_id, populate_existing=True)
    if sweep is None and (prefix := as_prefix(sweep_id)) is not None:  # an unambiguous prefix of one of theirs
        mine = () if owner is None else (Sweep.owner == owner,)
        full = ids_starting_with(session, Sweep.id, prefix, kind="sweep", where=mine)
        sweep = session.get(Sweep, full, populate_existing=True) if full is not None else None
    if sweep is None or (owner is not None and sweep.owner != owner):
        raise SweepNotFound(sweep_id)
    return sweep


def list_sweeps(session: Session, *, status: SweepStatus | None = None, offset: int = 0,
                limit: int = 50, owner: str | None = None) -> tuple[Sequence[Sweep], int]:
    """Sweeps (`owner`: only theirs), newest first, and how many match in all."""
    query = select(Sweep) if status is None else select(Sweep).where(Sweep.status == status)
    if owner is not None:
        query = query.where(Sweep.owner == owner)
    return newest_page(session, query, Sweep, offset=offset, limit=limit)


def trial_jobs(session: Session, *, sweep_id: str) -> Sequence[Job]:
    """The sweep's launched trials, by trial index."""
    return session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.trial)).all()


def leaderboard(session: Session, sweep: Sweep) -> list[Trial]:
    """Every trial, best first by the sweep's metric (best epoch of each); trials without one, then waiting ones."""
    launched = {job.trial: job for job in trial_jobs(session, sweep_id=sweep.id)}
    best = _best_epochs(session, sweep, [job.id for job in launched.values()])
    rows = []
    for index, config in enumerate(sweep.trials):
        job = launched.get(index)
        if job is None:  # waiting, or its job was deleted (DELETE /v1/jobs/{id})
            hp = config.get("hyperparameters") or {}
            searched = {name: hp.get(name) for name in sweep.searched}
            rows.append(Trial(index, None, _unlaunched(sweep) if index >= sweep.launched else "deleted",
                              searched, None, None))
            continue
        epoch, value = best.get(job.id, (None, None))
        rows.append(_trial(sweep, index, job, epoch, value))
    sign = -1 if sweep.mode == "max" else 1
    return sorted(rows, key=lambda t: (t.metric is None, t.job_id is None, sign * (t.metric or 0), t.trial))


def _best_epochs(session: Session, sweep: Sweep, job_ids: list[str]) -> dict[str, tuple[int, float]]:
    """job id -> (epoch, value) of its best epoch by the sweep's metric."""
    column = getattr(EpochMetric, sweep.metric)
    rows = session.execute(select(EpochMetric.job_id, EpochMetric.epoch, column)
                           .where(EpochMetric.job_id.in_(job_ids), column.is_not(None))).all() if job_ids else []
    return _best_of(rows, sweep.mode)


def _best_of(rows, mode: str) -> dict[str, tuple[int, float]]:
    """(job id, epoch, value) rows → job id -> (epoch, value) of the best value ("max" or "min")."""
    best: dict[str, tuple[int, float]] = {}
    better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
    for job_id, epoch, value in rows:
        if job_id not in best or better(value, best[job_id][1]):
            best[job_id] = (epoch, value)
    return best


@dataclass(frozen=True)
class SweepFacts:
    """What a sweep's summary shows beside its own row: trials by status, its best trial and that trial's model."""

    counts: dict[str, int]
    best: Trial | None
    best_model_id: int | None


def summaries(session: Session, sweeps: Sequence[Sweep]) -> dict[str, SweepFacts]:
    """Each sweep's SweepFacts in at most four queries whatever the number of sweeps (a page of
    GET /v1/sweeps): their trials' statuses, their best jobs, those jobs' epochs and model versions."""
    counts: dict[str, dict[str, int]] = {s.id: defaultdict(int) for s in sweeps}
    if sweeps:
        for sweep_id, status, n in session.execute(
                select(Job.sweep_id, Job.status, func.count()).where(Job.sweep_id.in_(list(counts)))
                .group_by(Job.sweep_id, Job.status)).all():
            counts[sweep_id][status] = n
    best_ids = [s.best_job_id for s in sweeps if s.best_job_id]
    best_jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(best_ids)))} if best_ids else {}
    epochs = session.scalars(select(EpochMetric).where(EpochMetric.job_id.in_(best_ids))).all() if best_ids else []
    models = dict(session.execute(select(ModelVersion.job_id, ModelVersion.id)
                                  .where(ModelVersion.job_id.in_(best_ids))).all()) if best_ids else {}
    facts = {}
    for sweep in sweeps:
        if len(sweep.trials) > sweep.launched:
            counts[sweep.id][_unlaunched(sweep)] += len(sweep.trials) - sweep.launched
        job = best_jobs.get(sweep.best_job_id)
        best = None
        if job is not None and job.trial is not None:
            rows = [(r.job_id, r.epoch, getattr(r, sweep.metric)) for r in epochs
                    if r.job_id == job.id and getattr(r, sweep.metric) is not None]
            epoch, value = _best_of(rows, sweep.mode).get(job.id, (None, None))
            best = _trial(sweep, job.trial, job, epoch, value)
        facts[sweep.id] = SweepFacts(dict(counts[sweep.id]), best, models.get(sweep.best_job_id))
    return facts


def _trial(sweep: Sweep, index: int, job: Job, epoch: int | None, value: float | None) -> Trial:
    hp = sweep.trials[index].get("hyperparameters") or {}
    searched = {name: hp.get(name) for name in sweep.searched}
    return Trial(index, job.id, job.status, searched, value, epoch, job.reused_from)


def best_model_id(session: Session, best_job_id: str | None) -> int | None:
    """The model version the sweep's best trial registered, if any (not every dataset registers models)."""
    if best_job_id is None:
        return None
    return session.scalar(select(ModelVersion.id).where(ModelVersion.job_id == best_job_id))


def status_counts(session: Session, sweep: Sweep) -> dict[str, int]:
    """How many trials are in each status ('waiting': not launched yet)."""
    counts: dict[str, int] = defaultdict(int)
    for status, n in session.execute(select(Job.status, func.count()).where(Job.sweep_id == sweep.id)
                                     .group_by(Job.status)).all():
        counts[status] = n
    if len(sweep.trials) > sweep.launched:
        counts[_unlaunched(sweep)] += len(sweep.trials) - sweep.launched
    return dict(counts)


def _unlaunched(sweep: Sweep) -> str:
    """What a trial that never became a job is: waiting, or cancelled with its sweep."""
    return "cancelled" if sweep.cancel_requested_at is not None else "waiting"


# ---------------------------------------------------------------- create, advance


def create(session: Session, *, plan: SweepPlan, dispatcher: jobs.Dispatcher | None) -> Sweep:
    """Insert the sweep and launch its first `max_parallel` trials, in one transaction; then dispatch them."""
    sweep = Sweep(
        id=str(uuid.uuid4()), name=plan.name, model=plan.model, dataset=plan.dataset,
        status=SweepStatus.queued, request=plan.request, trials=plan.trials, searched=plan.searched,
        metric=plan.metric, mode=METRIC_MODES[plan.metric], max_parallel=plan.max_parallel, asha=plan.asha,
        reuse={"dataset_checksum": plan.reuse.dataset_checksum, "code_version": plan.reuse.code_version}
        if plan.reuse is not None else None,
        launched=0, created_at=utcnow(), owner=plan.owner,
    )
    session.add(sweep)
    session.flush()
    launched = _launch(session, sweep)
    _settle(session, sweep)
    session.commit()
    _dispatch(session, launched, dispatcher)
    return sweep


def advance(session: Session, *, sweep_id: str, dispatcher: jobs.Dispatcher | None) -> Sweep:
    """Launch waiting trials into free slots and settle the sweep's status. Safe to race: see the module."""
    for _ in range(3):  # another caller claimed the same trials first: read again and retry
        sweep = get_sweep(session, sweep_id=sweep_id)
        if sweep.cancel_requested_at is not None or sweep.status.is_terminal:
            session.rollback()
            return sweep
        launched = _launch(session, sweep)
        if launched is None:
            session.rollback()
            continue
        _settle(session, sweep)
        session.commit()
        _dispatch(session, launched, dispatcher)
        return sweep
    return get_sweep(session, sweep_id=sweep_id)


def advance_open(session: Session, *, dispatcher: jobs.Dispatcher | None) -> list[str]:
    """`advance` every unfinished sweep (the maintenance pass); returns their ids."""
    ids = session.scalars(select(Sweep.id).where(Sweep.status.in_(
        [SweepStatus.queued, SweepStatus.running]))).all()
    session.rollback()
    for sweep_id in ids:
        advance(session, sweep_id=sweep_id, dispatcher=dispatcher)
    return list(ids)


def after_trial(session: Session, *, job_id: str, dispatcher: jobs.Dispatcher | None) -> None:
    """A job ended: if it was a sweep's trial, advance its sweep (a slot is free)."""
    sweep_id = session.scalar(select(Job.sweep_id).where(Job.id == job_id))
    session.rollback()
    if sweep_id is not None:
        advance(session, sweep_id=sweep_id, dispatcher=dispatcher)


def _launch(session: Session, sweep: Sweep) -> list[Job] | None:
    """Turn waiting trials into jobs while slots are free (reused results take no slot). Flushes only.

    None when another caller claimed trials meanwhile (the conditional UPDATE matched nothing).
    """
    active = session.scalar(select(func.count()).where(Job.sweep_id == sweep.id, Job.status.in_(ACTIVE))) or 0
    reuse = jobs.Reuse(**sweep.reuse) if sweep.reuse else None
    start = end = sweep.launched
    while end < len(sweep.trials) and active < sweep.max_parallel:
        reused = reuse is not None and jobs.find_reusable(session, config=sweep.trials[end], reuse=reuse) is not None
        active += not reused
        end += 1
    if end == start:
        return []
    # claim before inserting: a caller that read `launched` before another's commit matches nothing here
    claimed = session.execute(update(Sweep).where(Sweep.id == sweep.id, Sweep.launched == start)
                              .values(launched=end).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        return None
    sweep.launched = end
    return [jobs.add_job(session, config=sweep.trials[index], reuse=reuse, sweep_id=sweep.id, trial=index, owner=sweep.owner,
                         name=f"{sweep.name or 'sweep ' + sweep.id[:8]} trial {index}")
            for index in range(start, end)]


def _settle(session: Session, sweep: Sweep) -> None:
    """Set running / succeeded / failed from the trials (cancelled is `cancel`'s). Flushes only."""
    counts = status_counts(session, sweep)
    active = sum(counts.get(s, 0) for s in ACTIVE)
    if len(sweep.trials) > sweep.launched or active:
        started = sweep.launched > 0 and (counts.get(JobStatus.queued, 0) < sweep.launched)
        status = SweepStatus.running if started else SweepStatus.queued
        # the leader so far (GET /v1/sweeps lists it); answers about one sweep read it live (current_best_job_id)
        values: dict[str, Any] = {"status": status, "best_job_id": leading_job(leaderboard(session, sweep), final=False)}
    else:
        best = _best_succeeded(session, sweep)
        status = SweepStatus.succeeded if best is not None else SweepStatus.failed
        values = {"status": status, "finished_at": utcnow(), "best_job_id": best,
                  "error": None if best else "no trial succeeded; see the trials' errors"}
    session.execute(update(Sweep).where(Sweep.id == sweep.id, Sweep.status.in_(
        [SweepStatus.queued, SweepStatus.running])).values(**values)
        .execution_options(synchronize_session=False))
    for key, value in values.items():
        setattr(sweep, key, value)
    session.flush()


def _best_succeeded(session: Session, sweep: Sweep) -> str | None:
    return leading_job(leaderboard(session, sweep), final=True)


def leading_job(board: Sequence[Trial], *, final: bool) -> str | None:
    """The job of the best trial with a metric on a leaderboard (best first): a succeeded one, or while the
    sweep runs also a queued or running one (a failed, stopped or cancelled trial never leads)."""
    leads = {JobStatus.succeeded} if final else {JobStatus.succeeded, *ACTIVE}
    return next((t.job_id for t in board if t.status in leads and t.metric is not None), None)


def current_best_job_id(sweep: Sweep, board: Sequence[Trial]) -> str | None:
    """`best_job_id` as answers show it: the stored one once the sweep ended, the leader so far before."""
    return sweep.best_job_id if SweepStatus(sweep.status).is_terminal else leading_job(board, final=False)


def _dispatch(session: Session, launched: list[Job], dispatcher: jobs.Dispatcher | None) -> None:
    for job in launched:
        try:
            jobs.dispatch(session, job, dispatcher)
        except BrokerUnavailable:
            pass  # the job is failed and says why; the sweep's next advance fills the slot


# ---------------------------------------------------------------- cancel


def cancel(session: Session, *, sweep_id: str, publisher: Publisher = _QUIET) -> Sweep:
    """Cancel the sweep: no trial launches any more; queued trials cancel at once, running ones stop soon.

    The sweep's own change is one transaction; each trial's cancel is then its own `core.jobs.cancel`.
    """
    sweep = get_sweep(session, sweep_id=sweep_id)
    now = utcnow()
    done = session.execute(update(Sweep).where(Sweep.id == sweep_id, Sweep.status.in_(
        [SweepStatus.queued, SweepStatus.running]))
        .values(status=SweepStatus.cancelled, cancel_requested_at=now, finished_at=now,
                error="cancelled on request")).rowcount == 1
    session.commit()
    session.refresh(sweep)
    if not done:
        if sweep.status == SweepStatus.cancelled:
            return sweep  # cancelling twice is harmless
        raise SweepNotCancellable(sweep_id, sweep.status)
    active = session.scalars(select(Job.id).where(Job.sweep_id == sweep_id, Job.status.in_(ACTIVE))).all()
    for job_id in active:
        try:
            jobs.cancel(session, job_id=job_id, publisher=publisher)
        except ServiceError:
            pass  # it finished meanwhile
    return sweep


# ---------------------------------------------------------------- early stopping (ASHA)


def rungs(asha: dict[str, int], epochs: int) -> list[int]:
    """The epochs where ASHA decides: grace × factor^k, before the last epoch."""
    out, rung = [], asha["grace_epochs"]
    while rung < epochs:
        out.append(rung)
        rung *= asha["reduction_factor"]
    return out


def early_stop_reason(session: Session, *, job_id: str, epoch: int, after: int | None = None) -> str | None:
    """Should this trial stop after `epoch`? A sentence saying why, or None to continue. Reads only.

    At a rung, a trial continues only if its metric there ranks in the top 1/reduction_factor of the
    trials that reached that rung (at least one always continues). It decides on the last rung in
    (`after`, `epoch`]; `after=None` (an attempt's first checkpoint) means any rung up to `epoch`, so
    an attempt resumed past a rung its crashed predecessor never decided on decides now. Made from
    the epoch rows in SQL only, so any process makes the same decision after a crash.
    """
    job = session.get(Job, job_id)
    sweep = session.get(Sweep, job.sweep_id) if job is not None and job.sweep_id else None
    if sweep is None or not sweep.asha:
        return None
    epochs = int((job.config.get("hyperparameters") or {}).get("epochs", 0))
    due = [r for r in rungs(sweep.asha, epochs) if r <= epoch and (after is None or r > after)]
    if not due:
        return None
    rung = due[-1]
    column = getattr(EpochMetric, sweep.metric)
    values = dict(session.execute(
        select(EpochMetric.job_id, column).join(Job, Job.id == EpochMetric.job_id)
        .where(Job.sweep_id == sweep.id, EpochMetric.epoch == rung, column.is_not(None))).all())
    mine = values.get(job_id)
    if mine is None:
        return None
    factor = sweep.asha["reduction_factor"]
    keep = max(1, len(values) // factor)
    ahead = sum(1 for v in values.values() if (v > mine if sweep.mode == "max" else v < mine))
    if ahead < keep:
        return None
    return (f"stopped early (ASHA): {sweep.metric} {mine:.4g} at epoch {rung} ranked {ahead + 1} of the "
            f"{len(values)} trials that reached it; only the top {keep} (1/{factor}) continue")
