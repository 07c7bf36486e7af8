"""Feedback: a person says what a predicted file really is (one of the model version's classes)."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from core.errors import FeedbackLabelInvalid
from core.orm import Prediction, utcnow


def give_feedback(session: Session, *, prediction: Prediction, label: str, classes: Sequence[str],
                  by: str | None) -> Prediction:
    """Record `label` as what the file is (again: the last one counts); FeedbackLabelInvalid unless it is a class. Commits."""
    if label not in classes:
        raise FeedbackLabelInvalid(label, list(classes))
    prediction.feedback_label = label
    prediction.feedback_by = by
    prediction.feedback_at = utcnow()
    session.commit()
    return prediction
