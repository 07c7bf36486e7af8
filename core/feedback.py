"""A dataset's feedback set (kept inputs a person labelled) and the snapshot of it a job trains on.

Who sees which feedback: a user their own predictions' (on a built-in dataset and on their own
upload alike), an admin everyone's. The snapshot fixes the rows at submit: their ids, how many, and a
sha256 over each id, label and input digest, so the same snapshot gives the same data or none at all.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import FeedbackSnapshotChanged
from core.orm import Prediction

_IN_SET = (Prediction.feedback_label.is_not(None), Prediction.input_key.is_not(None))
_IDS_PER_QUERY = 5000


def feedback_rows(session: Session, *, dataset: str, owner: str | None = None) -> Sequence[Prediction]:
    """The feedback set of `dataset` (`owner`: only their predictions'), ordered by id."""
    query = select(Prediction).where(Prediction.dataset == dataset, *_IN_SET).order_by(Prediction.id)
    if owner is not None:
        query = query.where(Prediction.owner == owner)
    return session.scalars(query).all()


def feedback_counts(session: Session, *, dataset: str, owner: str | None = None) -> list[tuple[str, int]]:
    """(label, rows) of `dataset`'s feedback set (`owner`: only theirs), by label; one aggregate query."""
    query = (select(Prediction.feedback_label, func.count()).where(Prediction.dataset == dataset, *_IN_SET)
             .group_by(Prediction.feedback_label).order_by(Prediction.feedback_label))
    if owner is not None:
        query = query.where(Prediction.owner == owner)
    return [(label, int(n)) for label, n in session.execute(query)]


def rows_sha256(rows: Sequence[Prediction]) -> str:
    """sha256 over each row's id, label and input digest, in id order: what a job's data depends on."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.id):
        digest.update(f"{row.id}\t{row.feedback_label}\t{row.input_sha256}\n".encode())
    return digest.hexdigest()


def take_snapshot(session: Session, *, dataset: str, owner: str | None = None) -> dict[str, Any]:
    """The snapshot a job stores in `jobs.feedback`: {prediction_ids, count, sha256}."""
    rows = feedback_rows(session, dataset=dataset, owner=owner)
    return {"prediction_ids": [r.id for r in rows], "count": len(rows), "sha256": rows_sha256(rows)}


def snapshot_rows(session: Session, *, job_id: str, snapshot: dict[str, Any]) -> list[Prediction]:
    """The rows of a job's snapshot, checked against its sha256; FeedbackSnapshotChanged when they differ.

    A deleted prediction (its owner asked for it to go) or a changed label must not be trained on
    silently under the old snapshot's name; the job fails saying so.
    """
    ids = list(snapshot.get("prediction_ids") or [])
    found: dict[str, Prediction] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):  # SQLite caps the parameters of one statement
        chunk = ids[start:start + _IDS_PER_QUERY]
        found.update((r.id, r) for r in session.scalars(select(Prediction).where(Prediction.id.in_(chunk))))
    gone = [i for i in ids if i not in found or found[i].input_key is None or found[i].feedback_label is None]
    if gone:
        raise FeedbackSnapshotChanged(job_id, f"{len(gone)} of its {len(ids)} feedback rows were deleted or lost "
                                              f"their input or label (e.g. prediction {gone[0]})")
    rows = [found[i] for i in ids]
    if rows_sha256(rows) != snapshot.get("sha256"):
        raise FeedbackSnapshotChanged(job_id, "a feedback label changed since it was submitted")
    return rows
