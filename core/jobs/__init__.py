"""The jobs service: the one owner of a job's lifecycle.

Transitions (submit, start, report_*, finish, cancel, requeue, delete) are keyword-only functions that
take a Session. Each is ONE transaction: helpers only flush; the transition commits once at its end,
and only then announces what happened through a `Publisher` (and hands ids to a `Dispatcher`). A caller
never sees a transition half done, and no event describes an uncommitted state. Every state change is
a conditional UPDATE, so racing callers (two deliveries, the reaper and the worker) cannot both win.

The modules, by concern: `reads` (rows as they are now), `submit` (insert and dispatch), `running`
(start and what a run reports), `ending` (finish, cancel, delete), `recovery` (requeue, the reaper's
passes), `reuse` (a succeeded job's result for the same inputs). Callers import from `core.jobs`.
"""
from core.jobs.ending import Outcome, StoppedAt, cancel, delete, finish
from core.jobs.reads import (
    ShownEpochs, best_checkpoint, disk_bytes, get_checkpoint, get_job, get_job_by_idempotency_key,
    latest_epoch_metric, list_attempts, list_checkpoints, list_epoch_metrics, list_jobs, request_fingerprint,
    shown_epochs,
)
from core.jobs.recovery import OUT_OF_MEMORY, requeue, requeue_stale, requeue_worker_jobs, resend_lost
from core.jobs.reuse import Reuse, find_reusable
from core.jobs.running import (
    ResumePoint, StartedRun, heartbeat, report_checkpoint, report_epochs, report_facts, report_progress, start,
)
from core.jobs.submit import Dispatcher, add_job, dispatch, submit

__all__ = [
    "OUT_OF_MEMORY", "Dispatcher", "Outcome", "ResumePoint", "Reuse", "ShownEpochs", "StartedRun", "StoppedAt", "add_job",
    "best_checkpoint", "cancel", "delete", "disk_bytes", "dispatch", "find_reusable", "finish", "get_checkpoint",
    "get_job", "get_job_by_idempotency_key", "heartbeat", "latest_epoch_metric", "list_attempts",
    "list_checkpoints", "list_epoch_metrics", "list_jobs", "report_checkpoint", "report_epochs", "report_facts",
    "report_progress", "request_fingerprint", "requeue", "requeue_stale", "requeue_worker_jobs", "resend_lost",
    "shown_epochs", "start", "submit",
]
