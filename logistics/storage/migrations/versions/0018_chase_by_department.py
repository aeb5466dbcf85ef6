"""Complaints and follow-ups carry their shipment's department: the console's queue finds a department's open
ones through a partial index, not by probing every department's open ones

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEPARTMENT = sqlmodel.sql.sqltypes.AutoString(length=100)


def upgrade() -> None:
    op.drop_index("ix_complaints_unanswered", table_name="complaints")
    for table in ("complaints", "follow_ups"):
        op.add_column(table, sa.Column("department", DEPARTMENT, nullable=True))
        # A shipment's department never changes, so a copy taken now stays true.
        op.execute(
            f"UPDATE {table} SET department = (SELECT s.department FROM shipments s WHERE s.id = {table}.shipment_id)"
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("department", existing_type=DEPARTMENT, nullable=False)
    op.create_index(
        "ix_complaints_unanswered",
        "complaints",
        ["department", "shipment_id"],
        postgresql_where=sa.text("answered_at IS NULL"),
        sqlite_where=sa.text("answered_at IS NULL"),
    )
    op.create_index(
        "ix_follow_ups_open",
        "follow_ups",
        ["department", "due_by"],
        postgresql_where=sa.text("closed_at IS NULL"),
        sqlite_where=sa.text("closed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_follow_ups_open", table_name="follow_ups")
    op.drop_index("ix_complaints_unanswered", table_name="complaints")
    for table in ("follow_ups", "complaints"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("department")
    op.create_index(
        "ix_complaints_unanswered",
        "complaints",
        ["shipment_id"],
        postgresql_where=sa.text("answered_at IS NULL"),
        sqlite_where=sa.text("answered_at IS NULL"),
    )
