"""The 公示 refresh reads a month's ratings by their time: an index, not a scan of every rating each 30 s

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ratings_created_at", "ratings", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_ratings_created_at", table_name="ratings")
