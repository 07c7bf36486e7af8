"""Sweeps and their trials as public schemas."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from api.sweeps.schemas import SweepLinks, SweepPublic, SweepSummary, TrialPublic
from core import sweeps as sweep_service
from core.orm import Sweep, SweepStatus


def sweep_links(sweep_id: str) -> SweepLinks:
    base = f"/v1/sweeps/{sweep_id}"
    return SweepLinks(self=base, events=f"{base}/events", cancel=f"{base}/cancel")


def trial_public(row: sweep_service.Trial) -> TrialPublic:
    """One leaderboard row."""
    return TrialPublic(trial=row.trial, job_id=row.job_id, status=row.status, hyperparameters=row.hyperparameters,
                       metric=row.metric, epoch=row.epoch, reused_from=row.reused_from)


def sweep_summary(sweep: Sweep, facts: sweep_service.SweepFacts) -> SweepSummary:
    """A sweep without its leaderboard."""
    return SweepSummary(
        id=sweep.id, name=sweep.name, model=sweep.model, dataset=sweep.dataset, status=SweepStatus(sweep.status),
        metric=sweep.metric, mode=sweep.mode, max_parallel=sweep.max_parallel,
        early_stopping={"asha": sweep.asha} if sweep.asha else None, reuse=sweep.reuse is not None,
        counts=facts.counts, total=len(sweep.trials), best=trial_public(facts.best) if facts.best else None,
        best_model_id=facts.best_model_id, error=sweep.error, created_at=sweep.created_at,
        finished_at=sweep.finished_at, links=sweep_links(sweep.id))


def sweep_summaries(session: Session, sweeps: Sequence[Sweep]) -> list[SweepSummary]:
    """A page of sweeps, with the few queries `core.sweeps.summaries` makes for all of them."""
    facts = sweep_service.summaries(session, sweeps)
    return [sweep_summary(s, facts[s.id]) for s in sweeps]


def sweep_public(session: Session, sweep: Sweep) -> SweepPublic:
    """A sweep and its leaderboard, best first."""
    board = sweep_service.leaderboard(session, sweep)
    best_id = sweep_service.current_best_job_id(sweep, board)
    best = next((t for t in board if t.job_id == best_id), None) if best_id else None
    facts = sweep_service.SweepFacts(sweep_service.status_counts(session, sweep), best,
                                     sweep_service.best_model_id(session, best_id))
    return SweepPublic(**sweep_summary(sweep, facts).model_dump(), trials=[trial_public(t) for t in board])
