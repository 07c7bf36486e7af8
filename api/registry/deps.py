"""The model version named in a path, looked up once for every route under /v1/models/{model_id}."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from api.auth import PrincipalDep
from api.deps import SessionDep
from core import model_registry as registry
from core.orm import ModelVersion

ModelId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a model id from GET /v1/models")]


def valid_model_id(session: SessionDep, principal: PrincipalDep, model_id: ModelId) -> ModelVersion:
    """The registered version named in the path; ModelNotFound (→ 404 naming the id) otherwise, or when it is
    of someone else's private upload."""
    return registry.get_model_version(session, model_id=model_id, owner=principal.owner_filter)


ModelDep = Annotated[ModelVersion, Depends(valid_model_id)]
