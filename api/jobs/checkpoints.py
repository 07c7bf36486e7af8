"""A job's checkpoints and their files."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from api.deps import SessionDep, StoreDep
from api.jobs.deps import JOB_ID_RESPONSES, JobDep
from api.jobs.presenters import checkpoint_public
from api.jobs.schemas import CheckpointsPublic
from core import jobs as job_service
from core.artifacts import ArtifactCorrupt, ArtifactMissing
from core.errors import CheckpointNotFound

router = APIRouter(prefix="/v1/jobs", tags=["checkpoints"])


@router.get("/{job_id}/checkpoints", response_model=CheckpointsPublic,
            responses=JOB_ID_RESPONSES)
def list_checkpoints(job: JobDep, session: SessionDep) -> CheckpointsPublic:
    """Epoch, metrics, size and sha256 of every checkpoint, with a download URL each."""
    rows = job_service.list_checkpoints(session, job_id=job.id)
    return CheckpointsPublic(job_id=job.id, data=[checkpoint_public(r) for r in rows], count=len(rows))


@router.get("/{job_id}/checkpoints/{epoch}/file", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}},
                       404: {"description": "unknown job id or epoch, or the file is gone"}, 409: JOB_ID_RESPONSES[409]})
def download_checkpoint(job: JobDep, session: SessionDep, store: StoreDep,
                        epoch: Annotated[int, Path(ge=0, le=100_000)]) -> FileResponse:
    """The checkpoint file itself: load it with torch.load(..., weights_only=True), adding
    map_location="cpu" on a machine without the GPU it was trained on."""
    row = job_service.get_checkpoint(session, job_id=job.id, epoch=epoch)
    # the key comes from the row the worker wrote, never from the request; a remote store's copy is
    # streamed into this host's cache (sha256 checked) and served from there
    try:
        path = store.get(row.path, row.sha256)
    except ArtifactMissing:
        raise CheckpointNotFound(job.id, epoch, why="checkpoint file is no longer in the artifact store") from None
    except ArtifactCorrupt:
        raise CheckpointNotFound(job.id, epoch, why="checkpoint file changed since it was written") from None
    return FileResponse(path, media_type="application/octet-stream",
                        filename=f"{job.model}-{job.dataset}-{job.id[:8]}-epoch-{epoch:03d}.pt",
                        headers={"X-Checkpoint-SHA256": row.sha256})
