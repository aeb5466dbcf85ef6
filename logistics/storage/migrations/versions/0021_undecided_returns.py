"""Returns and failures waiting for the hall's decision, by department (PostgreSQL): a partial index on the
department of an undecided one, and statistics on that expression so the planner knows how few they are. The
exception queue read every decided return of a department's history to find them. Creates pay nothing: a new
shipment is neither returned nor failed. SQLite reads them as before

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from logistics.domain.tables import UNDECIDED_DEPARTMENT_SQL

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    undecided = f"({UNDECIDED_DEPARTMENT_SQL})"
    op.create_index(
        "ix_shipments_undecided",
        "shipments",
        [sa.text(undecided), "status", "created_at"],
        postgresql_where=sa.text(f"{undecided} IS NOT NULL"),
    )
    op.execute(f"CREATE STATISTICS st_shipments_undecided ON {undecided} FROM shipments")
    # Filled by the next ANALYZE; at once on a database big enough to need them. Never on a new or small one: a
    # table analyzed while (nearly) empty is planned as if it stayed so, and a prepared statement would keep its
    # sequential scan as the table grows (until autovacuum analyzes it again, if it runs at all).
    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM (SELECT 1 FROM shipments LIMIT 10000) AS s"))
    if rows.scalar_one() >= 10000:
        op.execute("ANALYZE shipments")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP STATISTICS IF EXISTS st_shipments_undecided")
    op.drop_index("ix_shipments_undecided", table_name="shipments")
