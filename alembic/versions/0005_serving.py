"""serving: the validation split each model version was scored on, for auto-best that cannot be gamed

Revision ID: 0005_serving
Revises: 0004_datasets
Create Date: 2026-11-24 23:20:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005_serving'
down_revision: str | Sequence[str] | None = '0004_datasets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('val_split', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('val_samples', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('val_split_size', sa.Integer(), nullable=True))
        # versions registered before splits were recorded are never auto-promoted (promote by hand)
        batch_op.add_column(sa.Column('auto_promotable', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_column('auto_promotable')
        batch_op.drop_column('val_split_size')
        batch_op.drop_column('val_samples')
        batch_op.drop_column('val_split')
