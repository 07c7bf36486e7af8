"""Reading the prediction log: one prediction, a page of them, and a dataset's feedback set."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.errors import InvalidCursor, PredictionNotFound
from core.orm import Prediction


def get_prediction(session: Session, *, prediction_id: str, owner: str | None = None) -> Prediction:
    """The prediction with this id; PredictionNotFound when there is none or it is not `owner`'s (None: any)."""
    row = session.get(Prediction, prediction_id[:64])
    if row is None or (owner is not None and row.owner != owner):
        raise PredictionNotFound(prediction_id)
    return row


@dataclass(frozen=True)
class Cursor:
    """Where a page of predictions ends: the last row's time and id (the next page starts after it)."""

    created_at: datetime
    id: str

    def __str__(self) -> str:
        return f"{self.created_at.isoformat()}_{self.id}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """A cursor from its string form; InvalidCursor when it is not one."""
        at, _, prediction_id = text.rpartition("_")
        try:
            created_at = datetime.fromisoformat(at)
        except ValueError:
            raise InvalidCursor() from None
        if created_at.tzinfo is None or not prediction_id:
            raise InvalidCursor()
        return cls(created_at, prediction_id)

    @classmethod
    def after(cls, row: Prediction) -> "Cursor":
        return cls(row.created_at, row.id)


def list_predictions(
    session: Session, *, owner: str | None = None, dataset: str | None = None, model_id: int | None = None,
    feedback: Literal["with", "without"] | None = None, wrong: bool = False, cursor: Cursor | None = None,
    limit: int = 50,
) -> tuple[Sequence[Prediction], Cursor | None]:
    """A page of predictions, newest first, and the cursor of the next page (None at the end).

    Keyset paging on (created_at, id): each page is one bounded, indexed query however deep it goes.
    """
    query = select(Prediction)
    if owner is not None:
        query = query.where(Prediction.owner == owner)
    if dataset:
        query = query.where(Prediction.dataset == dataset)
    if model_id is not None:
        query = query.where(Prediction.model_version_id == model_id)
    if feedback == "with" or wrong:
        query = query.where(Prediction.feedback_label.is_not(None))
    elif feedback == "without":
        query = query.where(Prediction.feedback_label.is_(None))
    if wrong:
        query = query.where(Prediction.feedback_label != Prediction.label)
    if cursor is not None:
        query = query.where(or_(Prediction.created_at < cursor.created_at,
                                and_(Prediction.created_at == cursor.created_at, Prediction.id < cursor.id)))
    rows = session.scalars(query.order_by(Prediction.created_at.desc(), Prediction.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, Cursor.after(rows[-1]) if more else None

