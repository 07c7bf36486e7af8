"""POST /v1/predict/{dataset}/rows: the best model of an uploaded table answers JSON feature rows."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from api.deps import SessionDep
from api.rate_limit import PREDICT_RATE_LIMIT
from core import datasets as dataset_service
from ml.catalog import example_model
from ml.errors import BadUpload
from ml.inference.rows import RowPredictor

router = APIRouter(prefix="/v1/predict", tags=["predict"])


class RowsRequest(BaseModel):
    """Feature rows: lists in the dataset's column order, or objects keyed by column."""

    rows: list[list[float] | dict[str, float]] = Field(min_length=1, max_length=10_000)
    top_k: int = Field(3, ge=1, le=1000, description="classification: how many ranked classes per row")


class RowsPublic(BaseModel):
    model: dict[str, Any]
    columns: list[str]
    predictions: list[dict[str, Any]]


@router.post("/{dataset}/rows", response_model=RowsPublic, dependencies=[PREDICT_RATE_LIMIT],
             responses={404: {"description": "unknown dataset, or no model trained on it yet"},
                        422: {"description": "a row has the wrong columns or a value that is not a finite number"},
                        429: {"description": "PREDICT_RATE_PER_S used up for this key; see Retry-After"}})
def predict_rows(dataset: Annotated[str, Path(max_length=64)], body: RowsRequest, session: SessionDep) -> RowsPublic:
    """Predict each row with the best succeeded model on the table (lowest val MSE or highest val accuracy)."""
    row = dataset_service.get_dataset(session, name=dataset)  # DatasetNotFound → 404
    if row.kind != "csv":
        raise HTTPException(404, detail=f"{dataset!r} is an image dataset; send images to POST /v1/predict/{dataset}")
    best = dataset_service.best_table_model(session, dataset=dataset)
    if best is None:
        raise HTTPException(404, detail=f"no model has been trained on {dataset!r} yet; train one with POST /v1/jobs "
                                        f'{{"model": "{example_model(dataset)}", "dataset": "{dataset}"}}')
    job, checkpoint = best
    session.close()  # hold no connection while the model runs
    try:
        predictor = RowPredictor.load(checkpoint.path)  # small table models: loaded per request
        predictions = predictor.predict(body.rows, top_k=body.top_k)
    except BadUpload as exc:
        raise HTTPException(422, detail=exc.reason) from None
    except FileNotFoundError:
        raise HTTPException(503, detail=f"the checkpoint of job {job.id} is missing on the server") from None
    return RowsPublic(model={"job_id": job.id, "type": job.model, "best_metric": job.best_metric},
                      columns=predictor.columns, predictions=predictions)
