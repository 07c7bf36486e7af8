"""The prediction named in a path, looked up once for every route under /v1/predictions/{prediction_id}."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from api.auth import PrincipalDep
from api.deps import SessionDep
from core.orm import Prediction
from core.predictions import get_prediction

PredictionId = Annotated[str, Path(max_length=64, description="a prediction_id from a predict answer")]


def valid_prediction_id(session: SessionDep, principal: PrincipalDep, prediction_id: PredictionId) -> Prediction:
    """The caller's prediction named in the path; PredictionNotFound (→ 404 naming the id) otherwise, or when it
    is someone else's (their ids do not leak)."""
    return get_prediction(session, prediction_id=prediction_id, owner=principal.owner_filter)


PredictionDep = Annotated[Prediction, Depends(valid_prediction_id)]
