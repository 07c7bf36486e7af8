"""The periodic pass that keeps SQL and the broker honest: stale running jobs, lost queued jobs."""
from __future__ import annotations

import logging

import redis

from core.bus import Publisher
from core.db import session_scope
from core.jobs import Dispatcher, requeue_stale, resend_lost
from core.sweeps import advance_open
from core.queue import broker_job_ids
from core.settings import Settings

log = logging.getLogger("trainserve.maintenance")


def maintenance_pass(settings: Settings, *, broker: redis.Redis, dispatcher: Dispatcher,
                     publisher: Publisher) -> dict[str, list[str]]:
    """Requeue jobs whose worker stopped heartbeating; re-send queued jobs the broker lost; advance
    unfinished sweeps (a trial that ended while no worker could advance its sweep). Safe to race."""
    with session_scope() as session:
        stale = requeue_stale(session, timeout_s=settings.heartbeat_timeout_s, max_attempts=settings.max_attempts,
                              dispatcher=dispatcher, publisher=publisher)
    with session_scope() as session:
        lost = resend_lost(session, known=broker_job_ids(broker), min_age_s=settings.maintenance_interval_s,
                           dispatcher=dispatcher)
    with session_scope() as session:
        advance_open(session, dispatcher=dispatcher)
    if stale:
        log.warning("requeued %d job(s) whose worker was not seen for %gs: %s", len(stale),
                    settings.heartbeat_timeout_s, ", ".join(stale))
    if lost:
        log.warning("re-sent %d queued job(s) the broker did not hold: %s", len(lost), ", ".join(lost))
    return {"stale": stale, "lost": lost}
