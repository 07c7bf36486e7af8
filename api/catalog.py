"""What can be trained: models, datasets and each model's hyperparameters with defaults."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep
from core.datasets import hidden_upload_names
from ml.catalog import catalog as ml_catalog

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/catalog")
def get_catalog(settings: SettingsDep, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """Model types, datasets (present or not, sizes, classes; of the uploads, only yours) and hyperparameter
    schemas with defaults."""
    # a `def` route: the first call imports torch and looks at the data folder, off the event loop
    hidden = hidden_upload_names(session, owner=principal.owner_filter)
    session.close()
    found = ml_catalog(settings.data_dir)
    return {**found, "datasets": [d for d in found["datasets"] if d["name"] not in hidden]}
