"""The sweep named in a path, looked up once for every route under /v1/sweeps/{sweep_id}."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from api.auth import PrincipalDep
from api.deps import SessionDep
from core.orm import Sweep
from core.sweeps import get_sweep


def valid_sweep_id(session: SessionDep, principal: PrincipalDep,
                   sweep_id: Annotated[str, Path(description="a sweep id, or its first 8 or more characters")]) -> Sweep:
    """The caller's sweep named in the path by id or unambiguous prefix; SweepNotFound (→ 404 naming the id)
    otherwise, or when it is someone else's; AmbiguousId (→ 409 listing some matches) for a prefix of several."""
    return get_sweep(session, sweep_id=sweep_id, owner=principal.owner_filter)


SweepDep = Annotated[Sweep, Depends(valid_sweep_id)]

AMBIGUOUS = "the id prefix matches more than one of your sweeps (the detail lists some)"
# what every route under /v1/sweeps/{sweep_id} answers besides its own statuses
SWEEP_ID_RESPONSES = {404: {"description": "unknown sweep id"}, 409: {"description": AMBIGUOUS}}
