"""What can be trained: models, datasets and each model's hyperparameters with defaults."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import SettingsDep
from ml.catalog import catalog as ml_catalog

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/catalog")
def get_catalog(settings: SettingsDep) -> dict[str, Any]:
    """Model types, datasets (present or not, sizes, classes) and hyperparameter schemas with defaults."""
    # a `def` route: the first call imports torch and looks at the data folder, off the event loop
    return ml_catalog(settings.data_dir)
