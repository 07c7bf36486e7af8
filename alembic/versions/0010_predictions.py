"""the prediction log and feedback: predictions, jobs.feedback, model_versions.train_label_counts

Revision ID: 0010_predictions
Revises: 0009_artifact_keys
Create Date: 2026-12-03 22:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_predictions'
down_revision: str | Sequence[str] | None = '0009_artifact_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'predictions',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('model_version_id', sa.Integer(), nullable=False),
        sa.Column('dataset', sa.String(length=64), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('label', sa.String(length=128), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('top_k', sa.JSON(), nullable=False),
        sa.Column('abstained', sa.Boolean(), nullable=False),
        sa.Column('low_confidence', sa.Boolean(), nullable=False),
        sa.Column('out_of_distribution', sa.Boolean(), nullable=True),
        sa.Column('input_sha256', sa.String(length=64), nullable=False),
        sa.Column('input_size', sa.Integer(), nullable=False),
        sa.Column('input_key', sa.Text(), nullable=True),
        sa.Column('input_media_type', sa.String(length=64), nullable=True),
        sa.Column('feedback_label', sa.String(length=128), nullable=True),
        sa.Column('feedback_by', sa.String(length=64), nullable=True),
        sa.Column('feedback_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'],
                                name=op.f('fk_predictions_model_version_id_model_versions'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    )
    op.create_index('ix_predictions_dataset_created_at', 'predictions', ['dataset', 'created_at'], unique=False)
    op.create_index('ix_predictions_model_version_id_created_at', 'predictions',
                    ['model_version_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_predictions_created_at'), 'predictions', ['created_at'], unique=False)
    op.create_index(op.f('ix_predictions_feedback_label'), 'predictions', ['feedback_label'], unique=False)
    op.create_index(op.f('ix_predictions_owner'), 'predictions', ['owner'], unique=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feedback', sa.JSON(), nullable=True))
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('train_label_counts', sa.JSON(), nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite ≥ 3.35, PostgreSQL): batch mode would copy and drop `jobs`, and with
    # foreign keys on, dropping it cascades to every epoch, checkpoint and attempt row
    op.execute("ALTER TABLE model_versions DROP COLUMN train_label_counts")
    op.execute("ALTER TABLE jobs DROP COLUMN feedback")
    for name in ('ix_predictions_owner', 'ix_predictions_feedback_label', 'ix_predictions_created_at',
                 'ix_predictions_model_version_id_created_at', 'ix_predictions_dataset_created_at'):
        op.drop_index(name, table_name='predictions')
    op.drop_table('predictions')
