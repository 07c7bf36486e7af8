"""POST /v1/predict/{dataset}: classify uploaded images with the model serving that dataset."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.batching import BadUpload
from api.model_schemas import PredictModelPublic, PredictionPublic, PredictPublic
from api.predict_form import PredictRequest, openapi_extra, predict_request, query_options, read_form
from api.rate_limit import predict_rate_limit
from api.serving import ModelUnavailable, Served, ServingModels, serving_models
from core import model_registry as registry
from core.errors import ModelNotFound
from ml.catalog import dataset_is_servable, example_model, servable_datasets

router = APIRouter(prefix="/v1/predict", tags=["predict"])


def _no_model_yet(dataset: str) -> HTTPException:
    example = f'{{"model": "{example_model(dataset)}", "dataset": "{dataset}"}}'
    return HTTPException(404, detail=(
        f"no model has been trained for {dataset!r} yet; train one with POST /v1/jobs {example} "
        "(GET /v1/catalog lists the models) and it serves here as soon as the job succeeds"))


async def _pick_model(serving, dataset: str, model_id: int | None) -> Served:
    """The served version for this request: from memory on the loop, else looked up in the threadpool.

    A version in memory proves its dataset servable; any other answer may read the database (an
    uploaded dataset's spec, the registry), so it runs off the event loop.
    """
    fast = serving.fresh(dataset) if model_id is None else serving.loaded(model_id)
    if fast is not None:
        return fast if model_id is None else _check_dataset(fast, dataset)
    return await run_in_threadpool(_look_up_model, serving, dataset, model_id)


def _look_up_model(serving, dataset: str, model_id: int | None) -> Served:
    if not dataset_is_servable(dataset):
        raise HTTPException(404, detail=f"unknown dataset {dataset!r}; models are served for "
                                        f"{', '.join(servable_datasets())}")
    try:
        if model_id is None:
            served = serving.current(dataset)
            if served is None:
                raise _no_model_yet(dataset)
            return served
        try:
            served = serving.version(model_id)
        except ModelNotFound as exc:
            raise HTTPException(404, detail=f"{exc}; GET /v1/models?dataset={dataset} lists the ones you can use") from None
        return _check_dataset(served, dataset)
    except ModelUnavailable as exc:
        raise HTTPException(503, detail=str(exc)) from None


def _check_dataset(served: Served, dataset: str) -> Served:
    if served.info.dataset != dataset:
        raise HTTPException(422, detail=f"model {served.info.id} was trained on {served.info.dataset!r}, "
                                        f"not {dataset!r}; use POST /v1/predict/{served.info.dataset}")
    return served


@router.post(
    "/{dataset}", response_model=PredictPublic, response_model_exclude_none=True,
    openapi_extra=openapi_extra(),
    responses={404: {"description": "unknown dataset or model id, or no model trained yet for the dataset"},
               413: {"description": "too many files"},
               422: {"description": "a file is empty, too large, not an image, truncated, or has too many pixels"},
               503: {"description": "the model's checkpoint file is missing or changed on the server"}},
)
async def predict(
    request: Request,
    dataset: Annotated[str, Path(max_length=64, description="mnist, fashion_mnist or cats_dogs")],
) -> Response:
    """Label each uploaded image, in order; uploads are preprocessed exactly as the training data was.

    `model_id`, `top_k` and `explain` are accepted as query parameters or as form fields.
    """
    # async: the event loop only parses the request; reading, decoding, framing, the model and the
    # response body run in the model's batch worker thread (api/batching.py), with concurrent requests.
    # No FastAPI parameters or dependencies beyond the path and the router's auth: moving the rate limit
    # and the serving lookup here saved ~0.035 ms of solving a request, of a ~1 ms prediction;
    # api/predict_form.py reads the body. The rate limit now refuses before the body is parsed.
    await predict_rate_limit(request, request.state.principal)  # the key the router's auth dependency found
    serving = await serving_models(request)
    query = query_options(request)
    form = await read_form(request)
    try:
        return await _predict(predict_request(form, query), dataset, serving)
    finally:
        await form.close()  # spooled uploads: closed once the batch worker has read them


async def _predict(asked: PredictRequest, dataset: str, serving: ServingModels) -> Response:
    files, settings = asked.files, serving.settings
    if len(files) > settings.max_upload_files:
        raise HTTPException(413, detail=f"too many files: {len(files)}; send at most "
                                        f"{settings.max_upload_files} per request")
    served = await _pick_model(serving, dataset, asked.model_id)
    info, predictor = served.info, served.predictor
    model = PredictModelPublic(id=info.id, type=info.model, dataset=info.dataset, job_id=info.job_id,
                               validation_accuracy=info.val_accuracy, checkpoint_sha256=info.checkpoint_sha256,
                               preprocessing_version=predictor.preprocessing_version)

    def render(predictions) -> bytes:
        # serialised in the worker: FastAPI would validate the body again, in a threadpool hop of its own
        return PredictPublic(model=model, predictions=[
            PredictionPublic(file=upload.filename, **p.as_dict()) for upload, p in zip(files, predictions)
        ]).model_dump_json(exclude_none=True).encode()

    try:
        body = await served.batcher.predict([(f.filename, f.file) for f in files], top_k=asked.top_k,
                                            explain=asked.explain, render=render)
    except BadUpload as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return Response(body, media_type="application/json")
