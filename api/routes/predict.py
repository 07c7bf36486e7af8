"""POST /v1/predict/{dataset}: classify uploaded images with the model serving that dataset."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Path, UploadFile

from api.model_schemas import PredictModelPublic, PredictionPublic, PredictPublic
from api.rate_limit import PREDICT_RATE_LIMIT
from api.serving import ModelUnavailable, Served, ServingDep
from core import model_registry as registry
from ml.catalog import dataset_is_servable, example_model, servable_datasets
from ml.errors import BadImage
from ml.inference import decode_upload

router = APIRouter(prefix="/v1/predict", tags=["predict"])

def _no_model_yet(dataset: str) -> HTTPException:
    example = f'{{"model": "{example_model(dataset)}", "dataset": "{dataset}"}}'
    return HTTPException(404, detail=(
        f"no model has been trained for {dataset!r} yet; train one with POST /v1/jobs {example} "
        "(GET /v1/catalog lists the models) and it serves here as soon as the job succeeds"))


def _pick_model(serving, dataset: str, model_id: int | None) -> Served:
    try:
        if model_id is None:
            served = serving.current(dataset)
            if served is None:
                raise _no_model_yet(dataset)
            return served
        try:
            served = serving.version(model_id)
        except registry.ModelNotFound as exc:
            raise HTTPException(404, detail=f"{exc}; GET /v1/models?dataset={dataset} lists the ones you can use") from None
        if served.info.dataset != dataset:
            raise HTTPException(422, detail=f"model {model_id} was trained on {served.info.dataset!r}, "
                                            f"not {dataset!r}; use POST /v1/predict/{served.info.dataset}")
        return served
    except ModelUnavailable as exc:
        raise HTTPException(503, detail=str(exc)) from None


@router.post(
    "/{dataset}", response_model=PredictPublic, dependencies=[PREDICT_RATE_LIMIT],
    responses={404: {"description": "unknown dataset or model id, or no model trained yet for the dataset"},
               413: {"description": "too many files"},
               422: {"description": "a file is empty, too large, not an image, truncated, or has too many pixels"},
               503: {"description": "the model's checkpoint file is missing or changed on the server"}},
)
def predict(
    dataset: Annotated[str, Path(max_length=64, description="mnist, fashion_mnist or cats_dogs")],
    files: Annotated[list[UploadFile], File(description="one or more images (PNG, JPEG, GIF, BMP, TIFF, WebP)")],
    serving: ServingDep,
    model_id: Annotated[int | None, Form(ge=1, le=2**31 - 1, description="a model id; default: the serving one")] = None,
    top_k: Annotated[int, Form(ge=1, le=1000, description="how many ranked classes per file")] = 3,
) -> PredictPublic:
    """Label each uploaded image, in order; uploads are preprocessed exactly as the training data was."""
    # `def`, not `async def`: decoding and the model run in the threadpool, never on the event loop.
    settings = serving.settings
    if not dataset_is_servable(dataset):
        raise HTTPException(404, detail=f"unknown dataset {dataset!r}; models are served for "
                                        f"{', '.join(servable_datasets())}")
    if len(files) > settings.max_upload_files:
        raise HTTPException(413, detail=f"too many files: {len(files)}; send at most "
                                        f"{settings.max_upload_files} per request")
    served = _pick_model(serving, dataset, model_id)
    images = []
    for number, upload in enumerate(files, start=1):
        try:
            images.append(decode_upload(upload.file.read(), max_bytes=settings.max_upload_bytes,
                                        max_pixels=settings.max_upload_pixels))
        except BadImage as exc:
            raise HTTPException(422, detail=f"file {number} ({upload.filename!r}): {exc.reason}") from None
    predictions = served.predictor.predict(images, top_k=top_k)
    info = served.info
    return PredictPublic(
        model=PredictModelPublic(id=info.id, type=info.model, dataset=info.dataset, job_id=info.job_id,
                                 validation_accuracy=info.val_accuracy),
        predictions=[PredictionPublic(file=upload.filename, **p.as_dict()) for upload, p in zip(files, predictions)],
    )
