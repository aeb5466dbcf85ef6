"""outbox: an index on (kind, due_at), so that a claim takes the most urgent kinds without sorting every due row

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_kind_due", "outbox", ["kind", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_kind_due", table_name="outbox")
