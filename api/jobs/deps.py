"""The job named in a path, looked up once for every route under /v1/jobs/{job_id}."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from api.auth import PrincipalDep
from api.deps import SessionDep
from core.jobs import get_job
from core.orm import Job


def valid_job_id(session: SessionDep, principal: PrincipalDep,
                 job_id: Annotated[str, Path(description="a job id, or its first 8 or more characters")]) -> Job:
    """The caller's job named in the path by id or unambiguous prefix; JobNotFound (→ 404 naming the id) otherwise,
    or when it is someone else's; AmbiguousId (→ 409 listing some matches) for a prefix of several."""
    return get_job(session, job_id=job_id, owner=principal.owner_filter)


JobDep = Annotated[Job, Depends(valid_job_id)]

AMBIGUOUS = "the id prefix matches more than one of your jobs (the detail lists some)"
# what every route under /v1/jobs/{job_id} answers besides its own statuses
JOB_ID_RESPONSES = {404: {"description": "unknown job id"}, 409: {"description": AMBIGUOUS}}
