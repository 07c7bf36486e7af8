"""POST /v1/predict/{dataset}/rows: the best model of an uploaded table answers JSON feature rows."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from api.auth import PrincipalDep
from api.deps import SessionDep, StoreDep
from api.predict.errors import NoModelYet, NotServed, TableModelMissing
from api.predict.rate_limit import PREDICT_RATE_LIMIT
from api.predict.schemas import RowsPublic, RowsRequest
from core import datasets as dataset_service
from core.artifacts import ArtifactCorrupt, ArtifactMissing, ArtifactStore
from core.orm import Checkpoint, Job
from ml.inference.rows import RowPredictor

router = APIRouter(prefix="/v1/predict", tags=["predict"])


@router.post("/{dataset}/rows", response_model=RowsPublic, dependencies=[PREDICT_RATE_LIMIT],
             responses={404: {"description": "unknown dataset, or no model trained on it yet"},
                        422: {"description": "a row has the wrong columns or a value that is not a finite number"},
                        429: {"description": "PREDICT_RATE_PER_S used up for this key; see Retry-After"}})
def predict_rows(dataset: Annotated[str, Path(max_length=64)], body: RowsRequest, session: SessionDep,
                 principal: PrincipalDep, store: StoreDep) -> RowsPublic:
    """Predict each row with the best succeeded model on the table (lowest val MSE or highest val accuracy)."""
    job, checkpoint = _table_model(session, dataset, principal.owner_filter)
    session.close()  # hold no connection while the model runs
    predictor = _load(job, checkpoint, store)
    predictions = predictor.predict(body.rows, top_k=body.top_k)  # a bad row: BadUpload → 422
    return RowsPublic(model={"job_id": job.id, "type": job.model, "best_metric": job.best_metric},
                      columns=predictor.columns, predictions=predictions)


def _table_model(session: Session, dataset: str, owner: str | None) -> tuple[Job, Checkpoint]:
    """The best succeeded job on the uploaded table and its checkpoint; DatasetNotFound (also for someone else's
    upload), NotServed or NoModelYet."""
    row = dataset_service.get_dataset(session, name=dataset, owner=owner)
    if row.kind != "csv":
        raise NotServed.image_dataset(dataset)
    best = dataset_service.best_table_model(session, dataset=dataset)
    if best is None:
        raise NoModelYet.rows(dataset)
    return best


def _load(job: Job, checkpoint: Checkpoint, store: ArtifactStore) -> RowPredictor:
    try:  # small table models: loaded per request (a remote store's copy comes from this host's cache)
        return RowPredictor.load(store.get(checkpoint.path, checkpoint.sha256))
    except (ArtifactMissing, ArtifactCorrupt, FileNotFoundError):
        raise TableModelMissing(job.id) from None
