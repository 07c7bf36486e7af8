"""The prediction log: list and look at your predictions, fetch a kept input, say what a file really is, delete."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep, StoreDep
from api.predict.serving import ServingDep
from api.predictions.deps import PredictionDep
from api.predictions.png import as_png
from api.predictions.presenters import prediction_public
from api.predictions.schemas import FeedbackCreate, LoggedPredictionPublic, LoggedPredictionsPublic
from core import predictions as prediction_service
from core.errors import InputNotKept

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])

NOT_FOUND = {404: {"description": "unknown prediction id (or someone else's)"}}


@router.get("", response_model=LoggedPredictionsPublic)
def list_predictions(
    session: SessionDep,
    principal: PrincipalDep,
    dataset: Annotated[str | None, Query(max_length=64)] = None,
    model_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="a model version id")] = None,
    feedback: Annotated[Literal["with", "without"] | None, Query(description="with or without feedback")] = None,
    wrong: Annotated[bool, Query(description="true: only those whose feedback differs from the model's label")] = False,
    cursor: Annotated[str | None, Query(max_length=200, description="a previous page's next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> LoggedPredictionsPublic:
    """Your predictions (an admin's: everyone's), newest first, filtered by dataset, model, feedback."""
    after = prediction_service.Cursor.parse(cursor) if cursor else None  # InvalidCursor → 422
    rows, next_cursor = prediction_service.list_predictions(
        session, owner=principal.owner_filter, dataset=dataset, model_id=model_id, feedback=feedback, wrong=wrong,
        cursor=after, limit=limit)
    return LoggedPredictionsPublic(data=[prediction_public(r) for r in rows],
                                   next_cursor=str(next_cursor) if next_cursor else None, limit=limit)


@router.get("/{prediction_id}", response_model=LoggedPredictionPublic, responses=NOT_FOUND)
def get_prediction(prediction: PredictionDep) -> LoggedPredictionPublic:
    """One prediction: what the model said, the input's digest (and link when kept), the feedback."""
    return prediction_public(prediction)


@router.get("/{prediction_id}/input", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the kept upload as a PNG"},
                       404: {"description": "unknown prediction id, or its input was not kept"},
                       503: {"description": "the kept input is missing from the artifact store"}})
def get_input(prediction: PredictionDep, session: SessionDep, store: StoreDep, settings: SettingsDep) -> Response:
    """The upload of a prediction made with keep=true, as a PNG."""
    if prediction.input_key is None:
        raise InputNotKept(prediction.id)
    key, media_type = prediction.input_key, prediction.input_media_type
    session.close()  # hold no connection while the object is read
    with store.open(key) as stream:  # ArtifactMissing → 503
        data = stream.read()
    png = as_png(data, media_type, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_upload_pixels)
    return Response(png, media_type="image/png")


@router.post("/{prediction_id}/feedback", response_model=LoggedPredictionPublic,
             responses={**NOT_FOUND, 422: {"description": "the label is not one of the model's classes (named)"},
                        503: {"description": "the model's checkpoint file is missing or changed on the server"}})
def give_feedback(prediction: PredictionDep, body: FeedbackCreate, session: SessionDep, principal: PrincipalDep,
                  serving: ServingDep) -> LoggedPredictionPublic:
    """Say what the file really is (one of the model's classes); again to change it. Yours only (admins: any)."""
    # the classes are the checkpoint's: the version is usually loaded (it answered); if not, it loads here,
    # in the threadpool (a sync route), like an export
    classes = serving.version(prediction.model_version_id).predictor.classes
    row = prediction_service.give_feedback(session, prediction=prediction, label=body.label, classes=classes,
                                           by=principal.owner)
    return prediction_public(row)


@router.delete("/{prediction_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={**NOT_FOUND, 503: {"description": "its kept input could not be removed; nothing was deleted"}})
def delete_prediction(prediction: PredictionDep, session: SessionDep, store: StoreDep) -> Response:
    """Forget a prediction and remove its kept input."""
    prediction_service.delete_prediction(session, prediction=prediction, store=store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
