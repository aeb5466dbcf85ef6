"""The console's lists read a department's shipments by creation time through ix_shipments_status_department
(every status named), so ix_shipments_department_created goes: one index fewer for every create to maintain

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_shipments_department_created", table_name="shipments")


def downgrade() -> None:
    op.create_index("ix_shipments_department_created", "shipments", ["department", "created_at"])
