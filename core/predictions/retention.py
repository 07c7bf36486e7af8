"""Removing predictions with their kept inputs: one on request, old ones in the maintenance pass, a job's on its deletion.

Each removal takes the stored input first and the row after, so a failed removal leaves a row that
names the object and the next try finds it (as a job's files go before its rows).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.artifacts import ArtifactsNotRemoved, ArtifactStorageError, ArtifactStore
from core.orm import ModelVersion, Prediction, utcnow

log = logging.getLogger("trainserve.predictions")


def delete_prediction(session: Session, *, prediction: Prediction, store: ArtifactStore) -> None:
    """Remove one prediction and its kept input (ArtifactsNotRemoved, and the row stays, if the input cannot go). Commits."""
    if not _input_removed(store, prediction.input_key):
        raise ArtifactsNotRemoved(f"prediction {prediction.id!r}", [prediction.input_key])
    session.execute(delete(Prediction).where(Prediction.id == prediction.id))
    session.commit()


def delete_expired(session: Session, *, store: ArtifactStore, retention_days: float, batch: int = 500,
                   max_batches: int = 20, now: datetime | None = None) -> int:
    """Delete predictions older than `retention_days` and their kept inputs, `batch` rows per transaction,
    at most `max_batches` per call (the next pass goes on); how many rows went. Commits each batch."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    removed = 0
    for _ in range(max_batches):
        rows = session.execute(select(Prediction.id, Prediction.input_key).where(Prediction.created_at < cutoff)
                               .order_by(Prediction.created_at).limit(batch)).all()
        if not rows:
            break
        gone = [r.id for r in rows if _input_removed(store, r.input_key)]
        if gone:
            session.execute(delete(Prediction).where(Prediction.id.in_(gone)))
            session.commit()
            removed += len(gone)
        if len(gone) < len(rows):  # the store refused some: leave them (and the rest) to the next pass
            break
    return removed


def delete_inputs_of_job(session: Session, *, store: ArtifactStore, job_id: str, batch: int = 1000) -> None:
    """Remove the kept inputs of the predictions of the job's model version, before its rows cascade away;
    ArtifactsNotRemoved (nothing deleted) if some cannot go."""
    last = ""
    while True:
        rows = session.execute(
            select(Prediction.id, Prediction.input_key).join(ModelVersion, ModelVersion.id == Prediction.model_version_id)
            .where(ModelVersion.job_id == job_id, Prediction.input_key.is_not(None), Prediction.id > last)
            .order_by(Prediction.id).limit(batch)).all()
        if not rows:
            return
        left = [r.input_key for r in rows if not _input_removed(store, r.input_key)]
        if left:
            raise ArtifactsNotRemoved(f"job {job_id!r}'s predictions", left)
        last = rows[-1].id


def _input_removed(store: ArtifactStore, key: str | None) -> bool:
    if key is None:
        return True
    try:  # the key's folder (predictions/<id>/) goes with it: a local store keeps no empty folder per prediction
        return not store.delete_prefix(key.rpartition("/")[0] + "/")
    except (ArtifactStorageError, OSError) as exc:
        log.warning("could not remove the kept input %s: %s", key, exc)
        return False
