"""The periodic pass that keeps SQL and the broker honest: stale running jobs, lost queued jobs.

Every API process and every worker parent offers to run it; a Redis key per period (SET NX, on Redis's
clock) lets exactly one of them run it each MAINTENANCE_INTERVAL_S, however many processes there are.
So a deployment of workers alone still requeues, and N API processes do not run it N times.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from prometheus_client import Counter

from core.bus import Publisher
from core.db import session_scope
from core.artifacts import get_store
from core.jobs import Dispatcher, requeue_stale, resend_lost
from core.predictions import delete_expired
from core.sweeps import advance_open
from core.queue import broker_job_ids
from core.settings import Settings

log = logging.getLogger("trainserve.maintenance")

PASSES = Counter("trainserve_maintenance_passes", "maintenance passes this process ran (one per period in all)")
_PERIOD_KEY = "trainserve:maintenance:period:"


def claim_period(broker: redis.Redis, interval_s: float) -> bool:
    """True for the one process that takes the current period's pass (periods counted on Redis's clock)."""
    seconds, micros = broker.time()
    period = int((seconds + micros / 1e6) // interval_s)
    # the key outlives its period so a late process cannot claim it again; then it goes by itself
    return bool(broker.set(f"{_PERIOD_KEY}{period}", 1, nx=True, px=max(1000, int(interval_s * 3000))))


def pass_if_due(settings: Settings, *, broker: redis.Redis, dispatcher: Dispatcher, publisher: Publisher) -> bool:
    """Run the maintenance pass if no process has run it this period; True when this process did."""
    if not claim_period(broker, settings.maintenance_interval_s):
        return False
    maintenance_pass(settings, broker=broker, dispatcher=dispatcher, publisher=publisher)
    PASSES.inc()
    return True


def offer_passes(settings: Settings, *, broker: redis.Redis, dispatcher: Dispatcher, publisher: Publisher,
                 stop: threading.Event) -> None:
    """Until `stop`: offer to run the pass twice a period (so no period goes without one); for a thread."""
    while not stop.wait(settings.maintenance_interval_s / 2):
        try:
            pass_if_due(settings, broker=broker, dispatcher=dispatcher, publisher=publisher)
        except Exception as exc:  # Redis or the DB down for a moment: the next offer tries again
            log.warning("maintenance pass failed: %s", exc)


def maintenance_pass(settings: Settings, *, broker: redis.Redis, dispatcher: Dispatcher,
                     publisher: Publisher) -> dict[str, Any]:
    """Requeue jobs whose worker stopped heartbeating; re-send queued jobs the broker lost; advance
    unfinished sweeps (a trial that ended while no worker could advance its sweep); delete predictions older
    than PREDICTION_RETENTION_DAYS with their kept inputs. Safe to race."""
    with session_scope() as session:
        stale = requeue_stale(session, timeout_s=settings.heartbeat_timeout_s, max_attempts=settings.max_attempts,
                              dispatcher=dispatcher, publisher=publisher)
    with session_scope() as session:
        lost = resend_lost(session, known=broker_job_ids(broker), min_age_s=settings.maintenance_interval_s,
                           dispatcher=dispatcher)
    with session_scope() as session:
        advance_open(session, dispatcher=dispatcher)
    with session_scope() as session:  # bounded: at most 20 batches of 500 a pass, the next pass goes on
        expired = delete_expired(session, store=get_store(), retention_days=settings.prediction_retention_days)
    if expired:
        log.info("deleted %d prediction(s) older than %g days", expired, settings.prediction_retention_days)
    if stale:
        log.warning("requeued %d job(s) whose worker was not seen for %gs: %s", len(stale),
                    settings.heartbeat_timeout_s, ", ".join(stale))
    if lost:
        log.warning("re-sent %d queued job(s) the broker did not hold: %s", len(lost), ", ".join(lost))
    return {"stale": stale, "lost": lost, "expired_predictions": expired}
