"""job lifecycle: attempts, heartbeats and queue times

Revision ID: 0003_lifecycle
Revises: 0002_model_registry
Create Date: 2026-11-24 23:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003_lifecycle'
down_revision: str | Sequence[str] | None = '0002_model_registry'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENDS = ("succeeded", "failed", "cancelled", "process_died", "worker_lost", "worker_restarted", "worker_stopped")


def upgrade() -> None:
    op.create_table('job_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=255), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('resumed_from_epoch', sa.Integer(), nullable=True),
    sa.Column('resumed_from_batch', sa.Integer(), nullable=True),
    sa.Column('stop_checkpoint', sa.Text(), nullable=True),
    sa.Column('stop_epoch', sa.Integer(), nullable=True),
    sa.Column('stop_batch', sa.Integer(), nullable=True),
    sa.CheckConstraint("ended IN (" + ", ".join(f"'{e}'" for e in _ENDS) + ")", name=op.f('ck_job_attempts_ended')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_attempts_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_attempts')),
    sa.UniqueConstraint('job_id', 'number', name=op.f('uq_job_attempts_job_id_number'))
    )
    with op.batch_alter_table('job_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_attempts_job_id'), ['job_id'], unique=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('queued_at')
        batch_op.drop_column('heartbeat_at')
    with op.batch_alter_table('job_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_attempts_job_id'))
    op.drop_table('job_attempts')
