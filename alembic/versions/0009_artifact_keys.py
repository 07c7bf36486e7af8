"""artifact store: checkpoint paths become store keys (jobs/<id>/<file>), never host paths

Revision ID: 0009_artifact_keys
Revises: 0008_private_models
Create Date: 2026-12-03 18:20:00

Rewrites checkpoints.path, model_versions.checkpoint_path, job_attempts.stop_checkpoint and the
checkpoint entries of jobs.result from `<ARTIFACT_DIR>/jobs/<id>/<file>` to `jobs/<id>/<file>`.
The schema does not change. Downgrade puts ARTIFACT_DIR back in front (a local store's paths).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath

import sqlalchemy as sa
from alembic import op

revision: str = '0009_artifact_keys'
down_revision: str | Sequence[str] | None = '0008_private_models'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, id column, job id column, value column)
_COLUMNS = [("checkpoints", "id", "job_id", "path"), ("model_versions", "id", "job_id", "checkpoint_path"),
            ("job_attempts", "id", "job_id", "stop_checkpoint")]
_RESULT_KEYS = ("best_checkpoint", "last_checkpoint")


def _to_key(job_id: str, value: str) -> str:
    return value if not PurePath(value).is_absolute() else f"jobs/{job_id}/{PurePath(value).name}"


def _to_path(job_id: str, value: str) -> str:
    from core.settings import get_settings

    root = Path(get_settings().artifact_dir).resolve()
    return value if PurePath(value).is_absolute() else str(root / value)


def _rewrite(change: Callable[[str, str], str]) -> None:
    conn = op.get_bind()
    for table, id_col, job_col, col in _COLUMNS:
        rows = conn.execute(sa.text(f"SELECT {id_col}, {job_col}, {col} FROM {table} WHERE {col} IS NOT NULL")).all()
        for row_id, job_id, value in rows:
            if (new := change(job_id, value)) != value:
                conn.execute(sa.text(f"UPDATE {table} SET {col} = :v WHERE {id_col} = :i"), {"v": new, "i": row_id})
    for job_id, result in conn.execute(sa.text("SELECT id, result FROM jobs WHERE result IS NOT NULL")).all():
        data = json.loads(result) if isinstance(result, str) else result
        if not isinstance(data, dict):
            continue
        new = {k: change(job_id, v) if k in _RESULT_KEYS and isinstance(v, str) else v for k, v in data.items()}
        if new != data:
            conn.execute(sa.text("UPDATE jobs SET result = :v WHERE id = :i"), {"v": json.dumps(new), "i": job_id})


def upgrade() -> None:
    _rewrite(_to_key)


def downgrade() -> None:
    _rewrite(_to_path)
