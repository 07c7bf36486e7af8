"""The sweep named in a path, looked up once for every route under /v1/sweeps/{sweep_id}."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from api.auth import PrincipalDep
from api.deps import SessionDep
from core.orm import Sweep
from core.sweeps import get_sweep


def valid_sweep_id(session: SessionDep, principal: PrincipalDep,
                   sweep_id: Annotated[str, Path(description="a sweep id")]) -> Sweep:
    """The caller's sweep named in the path; SweepNotFound (→ 404 naming the id) otherwise, or when it is someone else's."""
    return get_sweep(session, sweep_id=sweep_id, owner=principal.owner_filter)


SweepDep = Annotated[Sweep, Depends(valid_sweep_id)]
