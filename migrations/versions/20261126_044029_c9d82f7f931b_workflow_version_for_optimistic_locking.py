"""workflow version for optimistic locking

Existing workflows start at version 1 (the server default).

Revision ID: c9d82f7f931b
Revises: feddbcc5486d
Create Date: 2026-11-26 04:40:29.951869+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c9d82f7f931b'
down_revision: str | Sequence[str] | None = 'feddbcc5486d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('workflows', sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    op.drop_column('workflows', 'version')
