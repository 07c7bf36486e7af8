"""Predictions of the log as public schemas."""
from __future__ import annotations

from api.predictions.schemas import FeedbackPublic, LoggedPredictionPublic
from core.orm import Prediction


def prediction_public(row: Prediction) -> LoggedPredictionPublic:
    """One logged prediction, with a link to its kept input and its feedback."""
    feedback = (FeedbackPublic(label=row.feedback_label, by=row.feedback_by, at=row.feedback_at)
                if row.feedback_label is not None else None)
    return LoggedPredictionPublic(
        id=row.id, model_id=row.model_version_id, dataset=row.dataset, owner=row.owner, created_at=row.created_at,
        label=None if row.abstained else row.label, confidence=None if row.abstained else row.confidence,
        top_k=row.top_k or [], abstained=row.abstained, low_confidence=row.low_confidence,
        out_of_distribution=row.out_of_distribution, input_sha256=row.input_sha256, input_size=row.input_size,
        kept=row.input_key is not None,
        input_url=f"/v1/predictions/{row.id}/input" if row.input_key is not None else None,
        feedback=feedback, wrong=None if feedback is None else row.feedback_label != row.label)
