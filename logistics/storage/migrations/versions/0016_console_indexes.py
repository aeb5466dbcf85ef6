"""The console's reads as index lookups: the status index extended by department (replacing ix_shipments_status),
what moved per department (partial: creates do not pay for it), and the applicant's phone and name (expression
indexes, filled from the rows already there as they are built), and the complaints still unanswered

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from logistics.domain.tables import APPLICANT_FIELD_SQL, MOVED_STATUSES, status_in_sql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    moved = sa.text(status_in_sql(MOVED_STATUSES))
    op.create_index("ix_shipments_status_department", "shipments", ["status", "department", "created_at"])
    op.drop_index("ix_shipments_status", table_name="shipments")
    op.create_index(
        "ix_shipments_department_moved",
        "shipments",
        ["department", "updated_at"],
        postgresql_where=moved,
        sqlite_where=moved,
    )
    unanswered = sa.text("answered_at IS NULL")
    op.create_index(
        "ix_complaints_unanswered", "complaints", ["shipment_id"], postgresql_where=unanswered, sqlite_where=unanswered
    )
    for key in ("phone", "name"):
        op.create_index(
            f"ix_shipments_applicant_{key}", "shipments", [sa.text(APPLICANT_FIELD_SQL[dialect].format(key=key))]
        )


def downgrade() -> None:
    op.drop_index("ix_complaints_unanswered", table_name="complaints")
    op.drop_index("ix_shipments_applicant_name", table_name="shipments")
    op.drop_index("ix_shipments_applicant_phone", table_name="shipments")
    op.drop_index("ix_shipments_department_moved", table_name="shipments")
    op.create_index("ix_shipments_status", "shipments", ["status"])
    op.drop_index("ix_shipments_status_department", table_name="shipments")
