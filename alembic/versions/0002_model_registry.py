"""model registry: model versions and the history of what served each dataset

Revision ID: 0002_model_registry
Revises: 0001_initial
Create Date: 2026-11-23 09:19:04.600346
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002_model_registry'
down_revision: str | Sequence[str] | None = '0001_initial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=64), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('val_accuracy', sa.Float(), nullable=False),
    sa.Column('test_accuracy', sa.Float(), nullable=True),
    sa.Column('test_metrics', sa.JSON(), nullable=True),
    sa.Column('checkpoint_path', sa.Text(), nullable=False),
    sa.Column('checkpoint_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_model_versions_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('job_id', name=op.f('uq_model_versions_job_id'))
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_versions_dataset'), ['dataset'], unique=False)

    op.create_table('serving_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('previous_model_version_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason IN ('auto-best', 'promoted')", name=op.f('ck_serving_events_reason')),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_serving_events_model_version_id_model_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['previous_model_version_id'], ['model_versions.id'], name=op.f('fk_serving_events_previous_model_version_id_model_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_serving_events'))
    )
    with op.batch_alter_table('serving_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_serving_events_dataset'), ['dataset'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('serving_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_serving_events_dataset'))

    op.drop_table('serving_events')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_dataset'))
        batch_op.drop_index(batch_op.f('ix_model_versions_created_at'))

    op.drop_table('model_versions')
