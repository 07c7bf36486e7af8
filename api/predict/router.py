"""POST /v1/predict/{dataset}: classify uploaded images with the model serving that dataset."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from api.predict.batching import ReadInputs
from api.predict.direct_route import DirectRoute
from api.predict.errors import TooManyFiles
from api.predict.form import PredictRequest, openapi_extra, predict_request, query_options, read_form
from api.predict.log import log_answers, prediction_log
from api.predict.pick import pick_model
from api.predict.rate_limit import predict_rate_limit
from api.predict.schemas import PredictModelPublic, PredictionPublic, PredictPublic
from api.predict.serving import ServingModels, serving_models
from core.keys import Principal
from core.predictions import PredictionLog

# DirectRoute: the key check and the path check without FastAPI's dependency solver (direct_route.py says why)
router = APIRouter(prefix="/v1/predict", tags=["predict"], route_class=DirectRoute)


@router.post(
    "/{dataset}", response_model=PredictPublic, response_model_exclude_none=True,
    openapi_extra=openapi_extra(),
    responses={404: {"description": "unknown dataset or model id, or no model trained yet for the dataset"},
               413: {"description": "too many files, or one over MAX_UPLOAD_BYTES (refused as it streams)"},
               422: {"description": "a file is empty, too large, not an image, truncated, or has too many pixels"},
               429: {"description": "PREDICT_RATE_PER_S used up for this key; see Retry-After"},
               503: {"description": "the model's checkpoint file is missing or changed on the server"}},
)
async def predict(
    request: Request,
    dataset: Annotated[str, Path(max_length=64, description="mnist, fashion_mnist or cats_dogs")],
) -> Response:
    """Label each uploaded image, in order; uploads are preprocessed exactly as the training data was.

    `model_id`, `top_k`, `explain` and `keep` are accepted as query parameters or as form fields. Each
    answer carries a `prediction_id` (the prediction log, README "Prediction log and feedback").
    """
    # async: the event loop only parses the request; reading, decoding, framing, the model and the
    # response body run in the model's batch worker thread (api/predict/batching.py), with concurrent requests.
    # No FastAPI parameters or dependencies beyond the path and the router's auth: moving the rate limit
    # and the serving lookup here saved ~0.035 ms of solving a request, of a ~1 ms prediction;
    # api/predict/form.py reads the body. The rate limit now refuses before the body is parsed.
    principal = request.state.principal  # the key the router's auth dependency found
    await predict_rate_limit(request, principal)
    serving = await serving_models(request)
    query = query_options(request)
    log = await prediction_log(request)
    form = await read_form(request, max_file_bytes=serving.settings.max_upload_bytes)
    try:
        return await _predict(predict_request(form, query), dataset, serving, principal, log)
    finally:
        await form.close()  # spooled uploads: closed once the batch worker has read them


async def _predict(asked: PredictRequest, dataset: str, serving: ServingModels, principal: Principal,
                   log: PredictionLog | None) -> Response:
    files, settings = asked.files, serving.settings
    if len(files) > settings.max_upload_files:
        raise TooManyFiles(len(files), settings.max_upload_files)
    served = await pick_model(serving, dataset, asked.model_id, principal.owner_filter)
    info, predictor = served.info, served.predictor
    model = PredictModelPublic(id=info.id, type=info.model, dataset=info.dataset, job_id=info.job_id,
                               validation_accuracy=info.val_accuracy, checkpoint_sha256=info.checkpoint_sha256,
                               preprocessing_version=predictor.preprocessing_version)

    keep = settings.prediction_keep_inputs if asked.keep is None else asked.keep
    inputs = ReadInputs(settings.prediction_input_max_bytes if keep else None) if log is not None else None

    def render(predictions) -> bytes:
        # serialised in the worker: FastAPI would validate the body again, in a threadpool hop of its own
        answers = [p.as_dict() for p in predictions]
        if log is not None:  # the worker filled `inputs` as it read the uploads
            answers = log_answers(log, answers, inputs.read, model_id=info.id, dataset=info.dataset,
                                  owner=principal.owner, keep=keep)
        return PredictPublic(model=model, predictions=[
            PredictionPublic(file=upload.filename, **a) for upload, a in zip(files, answers)
        ]).model_dump_json(exclude_none=True).encode()

    # an unreadable file: UnreadableFile → 422 naming it
    body = await served.batcher.predict([(f.filename, f.file) for f in files], top_k=asked.top_k,
                                        explain=asked.explain, render=render, inputs=inputs)
    return Response(body, media_type="application/json")
