"""The applicant's phone and name indexes leave out the shipments still pending or awaiting the applicant, where
every create starts: a create no longer pays for two inserts at random places in them; a shipment enters them
when it moves on (its order placed by the worker, say). The console finds a department's few starting
shipments by status

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from logistics.domain.tables import APPLICANT_FIELD_SQL, STARTED_SQL

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _applicant_indexes(where: str | None) -> None:
    dialect = op.get_bind().dialect.name
    condition = {} if where is None else {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}
    for key in ("phone", "name"):
        name = f"ix_shipments_applicant_{key}"
        op.drop_index(name, table_name="shipments")
        op.create_index(name, "shipments", [sa.text(APPLICANT_FIELD_SQL[dialect].format(key=key))], **condition)


def upgrade() -> None:
    _applicant_indexes(STARTED_SQL)


def downgrade() -> None:
    _applicant_indexes(None)
