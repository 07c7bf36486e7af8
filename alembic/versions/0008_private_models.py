"""model versions of a private upload are its owner's: model_versions.private and .owner

Revision ID: 0008_private_models
Revises: 0007_auth
Create Date: 2026-12-03 18:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_private_models'
down_revision: str | Sequence[str] | None = '0007_auth'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('private', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('owner', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_model_versions_owner'), ['owner'], unique=False)
    # versions trained on an upload that still exists become its owner's (a deleted upload's stay shared)
    op.execute("UPDATE model_versions SET private = true, "
               "owner = (SELECT owner FROM datasets WHERE datasets.name = model_versions.dataset) "
               "WHERE dataset IN (SELECT name FROM datasets)")


def downgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_owner'))
        batch_op.drop_column('owner')
        batch_op.drop_column('private')
