"""hyperparameter sweeps: the sweeps table, trials as jobs (sweep_id, trial, reused_from), status 'stopped'

Revision ID: 0006_sweeps
Revises: 0005_serving
Create Date: 2026-11-24 23:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_sweeps'
down_revision: str | Sequence[str] | None = '0005_serving'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
_ENDS = ("succeeded", "failed", "cancelled", "process_died", "worker_lost", "worker_restarted", "worker_stopped")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table('sweeps',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('request', sa.JSON(), nullable=False),
    sa.Column('trials', sa.JSON(), nullable=False),
    sa.Column('searched', sa.JSON(), nullable=False),
    sa.Column('metric', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=3), nullable=False),
    sa.Column('max_parallel', sa.Integer(), nullable=False),
    sa.Column('asha', sa.JSON(), nullable=True),
    sa.Column('reuse', sa.JSON(), nullable=True),
    sa.Column('launched', sa.Integer(), nullable=False),
    sa.Column('best_job_id', sa.String(length=36), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(_in("status", ("queued", "running", "succeeded", "failed", "cancelled")),
                       name=op.f('ck_sweeps_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sweeps'))
    )
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sweeps_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_sweeps_created_at'), ['created_at'], unique=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('trial', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reused_from', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_jobs_sweep_id'), ['sweep_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_jobs_sweep_id_trial'), ['sweep_id', 'trial'])
        batch_op.create_foreign_key(batch_op.f('fk_jobs_sweep_id_sweeps'), 'sweeps', ['sweep_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.drop_constraint(op.f('ck_jobs_status'), type_='check')
        batch_op.create_check_constraint('status', _in("status", _JOB_STATUSES + ("stopped",)))
    with op.batch_alter_table('job_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_job_attempts_ended'), type_='check')
        batch_op.create_check_constraint('ended', _in("ended", _ENDS + ("stopped",)))


def downgrade() -> None:
    op.execute("UPDATE jobs SET status = 'cancelled' WHERE status = 'stopped'")
    op.execute("UPDATE job_attempts SET ended = 'cancelled' WHERE ended = 'stopped'")
    with op.batch_alter_table('job_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_job_attempts_ended'), type_='check')
        batch_op.create_check_constraint('ended', _in("ended", _ENDS))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_jobs_status'), type_='check')
        batch_op.create_check_constraint('status', _in("status", _JOB_STATUSES))
        batch_op.drop_constraint(batch_op.f('fk_jobs_sweep_id_sweeps'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_jobs_sweep_id_trial'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_jobs_sweep_id'))
        batch_op.drop_column('reused_from')
        batch_op.drop_column('trial')
        batch_op.drop_column('sweep_id')
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweeps_created_at'))
        batch_op.drop_index(batch_op.f('ix_sweeps_status'))
    op.drop_table('sweeps')
