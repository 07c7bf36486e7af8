"""The model registry over HTTP: list, show, promote (and so roll back), serving history."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep
from api.predict.serving import ServingDep
from api.registry.deps import ModelDep
from api.registry.presenters import event_public, model_public, quality_public
from api.registry.schemas import (
    ModelPublic, ModelsPublic, PromotedPublic, QualityPublic, RollbackRequest, ServingAtPublic, ServingHistoryPublic,
    WindowQuery, WindowsQuery,
)
from core import model_registry as registry
from core import quality as live
from core.orm import utcnow
from ml.inference.export import export_model

router = APIRouter(prefix="/v1/models", tags=["models"])

DatasetQuery = Annotated[str | None, Query(max_length=64, description="only this dataset's models")]


@router.get("", response_model=ModelsPublic)
def list_models(session: SessionDep, principal: PrincipalDep, dataset: DatasetQuery = None) -> ModelsPublic:
    """Registered model versions (one per succeeded classification job), newest first: the built-in datasets'
    and those of your own uploads (an admin: everyone's)."""
    versions = registry.list_model_versions(session, dataset=dataset, owner=principal.owner_filter)
    serving = {d: registry.serving_version_id(session, dataset=d) for d in {v.dataset for v in versions}}
    data = [model_public(v, serving[v.dataset]) for v in versions]
    return ModelsPublic(data=data, count=len(data))


@router.get("/history", response_model=ServingHistoryPublic)
def serving_history(session: SessionDep, principal: PrincipalDep, dataset: DatasetQuery = None) -> ServingHistoryPublic:
    """Which model served each dataset from when, and why (auto-best or promoted), oldest first."""
    events = registry.serving_history(session, dataset=dataset, owner=principal.owner_filter)
    return ServingHistoryPublic(data=[event_public(e) for e in events], count=len(events))


@router.get("/serving", response_model=ServingAtPublic,
            responses={404: {"description": "nothing served the dataset at that time"}})
def serving_at(session: SessionDep, principal: PrincipalDep,
               dataset: Annotated[str, Query(max_length=64, description="a dataset name")],
               at: Annotated[datetime | None, Query(description="ISO 8601 time (UTC without a zone); default now")]
               = None) -> ServingAtPublic:
    """Which version served `dataset` at time `at` (from the promotion history)."""
    at = at or utcnow()
    event = registry.serving_at(session, dataset=dataset, at=at, owner=principal.owner_filter)
    current = registry.serving_version_id(session, dataset=dataset)
    return ServingAtPublic(dataset=dataset, at=at, model=model_public(event.model_version, current),
                           event=event_public(event))


@router.post("/rollback", response_model=PromotedPublic,
             responses={403: {"description": "a built-in dataset's serving is changed by admins only"},
                        404: {"description": "nothing served the dataset at that time"}})
def rollback(body: RollbackRequest, session: SessionDep, principal: PrincipalDep) -> PromotedPublic:
    """Serve again what served `dataset` at `at`, pinned as a promotion (the history records it).

    Admins roll back any dataset; a user only their own uploads."""
    event = registry.rollback_to(session, dataset=body.dataset, at=body.at, owner=principal.owner_filter)
    return PromotedPublic(model=model_public(event.model_version, event.model_version_id), event=event_public(event))


@router.get("/{model_id:int}", response_model=ModelPublic, responses={404: {"description": "unknown model id"}})
def get_model(version: ModelDep, session: SessionDep) -> ModelPublic:
    """One model version."""
    return model_public(version, registry.serving_version_id(session, dataset=version.dataset))


@router.get("/{model_id:int}/quality", response_model=QualityPublic,
            responses={404: {"description": "unknown model id"}})
def model_quality(version: ModelDep, session: SessionDep, settings: SettingsDep, window: WindowQuery = "1h",
                  windows: WindowsQuery = 24) -> QualityPublic:
    """Live quality over time windows from the prediction log: requests, abstain / low-confidence / OOD rates,
    the predicted-label mix against training (JS divergence), confidence, feedback accuracy, and a drift flag."""
    quality = live.model_quality(session, version=version, window_s=live.window_seconds(window), windows=windows,
                                 thresholds=live.DriftThresholds.from_settings(settings))
    return quality_public(quality, dataset=version.dataset, window=window)


@router.post("/{model_id:int}/promote", response_model=PromotedPublic,
             responses={403: {"description": "a built-in dataset's serving is changed by admins only"},
                        404: {"description": "unknown model id"}})
def promote_model(version: ModelDep, session: SessionDep, principal: PrincipalDep) -> PromotedPublic:
    """Make this version serve its dataset until another is promoted (promoting an older one rolls back).

    Admins promote any version; a user only versions of their own uploads."""
    event = registry.promote(session, model_id=version.id, owner=principal.owner_filter)
    return PromotedPublic(model=model_public(version, version.id), event=event_public(event))


@router.get("/{model_id:int}/export", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "a TorchScript or .pt2 archive (metadata.json inside) or an ONNX "
                                            "model (metadata property): classes, input, preprocessing"},
                       404: {"description": "unknown model id"},
                       503: {"description": "the model's checkpoint file is missing or changed on the server"}})
def download_export(version: ModelDep, session: SessionDep, serving: ServingDep,
                    format: Annotated[Literal["torchscript", "onnx", "pt2"], Query(
                        description="onnx or pt2 (torch.export; load with torch.export.load); torchscript, the "
                                    "default, is deprecated by PyTorch: torch.jit.load warns")]
                    = "torchscript") -> Response:
    """Download a model version as ONNX, .pt2 or TorchScript: normalised images in, probabilities out (docs/INFERENCE.md)."""
    # the checkpoint's sha256 is checked before it loads: ModelNotFound → 404, ModelUnavailable → 503
    model_id = version.id  # ModelDep: someone else's private version is an unknown id
    session.close()  # hold no connection while the model is exported
    served = serving.version(model_id)
    data = export_model(served.predictor, format, model_id=model_id, checkpoint_sha256=served.info.checkpoint_sha256)
    suffix = {"onnx": "onnx", "pt2": "pt2"}.get(format, "pt")
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="model-{model_id}-{format}.{suffix}"'})
