"""The prediction named in a path, looked up once for every route under /v1/predictions/{prediction_id}."""
from __future__ import annotations

import threading
import time
from typing import Annotated

from fastapi import Depends, Path, Request

from api.auth import PrincipalDep
from api.deps import SessionDep
from core.errors import PredictionNotFound
from core.orm import Prediction
from core.predictions import get_prediction

# a predict answer goes out before its row is written (the log's writer batches every ~0.1 s, in whichever API
# process answered): feedback sent straight after the answer waits that long once rather than get a 404.
# At most _LAG_WAITERS requests wait at a time (each holds a threadpool thread): a flood of unknown ids
# gets its 404s at once instead of tying up every thread the sync routes share.
_WRITER_LAG_S = 0.3
_LAG_WAITERS = threading.BoundedSemaphore(4)

PredictionId = Annotated[str, Path(max_length=64, description="a prediction_id from a predict answer")]


def valid_prediction_id(request: Request, session: SessionDep, principal: PrincipalDep,
                        prediction_id: PredictionId) -> Prediction:
    """The caller's prediction named in the path; PredictionNotFound (→ 404 naming the id) otherwise, or when it
    is someone else's (their ids do not leak)."""
    try:
        return get_prediction(session, prediction_id=prediction_id, owner=principal.owner_filter)
    except PredictionNotFound:
        if not _LAG_WAITERS.acquire(blocking=False):
            raise
    try:
        session.close()  # no connection held while it waits
        log = getattr(request.app.state, "prediction_log", None)
        if log is not None:
            log.flush(timeout_s=2.0)  # this process's queue written
        time.sleep(_WRITER_LAG_S)  # and another process's writer has had its turn
    finally:
        _LAG_WAITERS.release()
    return get_prediction(session, prediction_id=prediction_id, owner=principal.owner_filter)


PredictionDep = Annotated[Prediction, Depends(valid_prediction_id)]
