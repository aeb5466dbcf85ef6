"""A shipment's cases indexed in their order: the console's lists read each row's first case as the index's
first entry rather than sorting the shipment's cases for every row; it replaces the index on shipment_id alone,
so a create maintains as many indexes as before

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_shipment_cases_shipment_position", "shipment_cases", ["shipment_id", "position"])
    op.drop_index("ix_shipment_cases_shipment_id", table_name="shipment_cases")


def downgrade() -> None:
    op.create_index("ix_shipment_cases_shipment_id", "shipment_cases", ["shipment_id"])
    op.drop_index("ix_shipment_cases_shipment_position", table_name="shipment_cases")
