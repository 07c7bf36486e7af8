"""The predict path's side of the prediction log: an id for each answer, and its row queued for the writer.

All of it runs in the model's batch worker thread while the response is rendered: a uuid, a dict and a
put on a bounded queue per file. The writer (core/predictions/log.py) does the SQL and the storing.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any

from fastapi import Request

from api.deps import app_settings
from api.predict.batching import ReadInput
from core.db import get_sessionmaker
from core.orm import utcnow
from core.predictions import LoggedPrediction, PredictionLog

_create_guard = threading.Lock()


async def prediction_log(request: Request) -> PredictionLog | None:
    """The app's PredictionLog, started on first use; None with PREDICTION_LOG off."""
    # async and non-blocking, like serving_models: this runs on every predict request
    state = request.app.state
    log = getattr(state, "prediction_log", None)
    if log is None:
        settings = await app_settings(request)
        if not settings.prediction_log:
            return None
        with _create_guard:
            log = getattr(state, "prediction_log", None)
            if log is None:
                log = state.prediction_log = PredictionLog(get_sessionmaker(settings.database_url), state.store)
    return log


def log_answers(log: PredictionLog, answers: list[dict[str, Any]], inputs: list[ReadInput], *, model_id: int,
                dataset: str, owner: str | None, keep: bool) -> list[dict[str, Any]]:
    """Each answer with its `prediction_id` (and `kept` when keeping was asked); their rows queued for the writer."""
    now, out, entries = utcnow(), [], []
    for answer, read in zip(answers, inputs):
        prediction_id = str(uuid.uuid4())
        abstained = bool(answer.get("abstained"))
        row = {"id": prediction_id, "model_version_id": model_id, "dataset": dataset, "owner": owner,
               "created_at": now, "label": answer.get("label") or "",  # an abstention has no label: ""
               "confidence": answer.get("confidence") or 0.0, "top_k": answer.get("top_k") or [],
               "abstained": abstained, "low_confidence": bool(answer.get("low_confidence")),
               "out_of_distribution": answer.get("out_of_distribution"),
               "input_sha256": read.sha256, "input_size": read.size, "input_key": None, "input_media_type": None}
        entries.append(LoggedPrediction(row, read.data))
        out.append({**answer, "prediction_id": prediction_id, **({"kept": read.data is not None} if keep else {})})
    log.add(entries)
    return out
