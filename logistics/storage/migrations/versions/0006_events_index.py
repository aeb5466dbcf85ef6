"""shipment_events: drop the index on shipment_id alone; the unique (shipment_id, sequence) index serves every
lookup by shipment, and the second index cost a write per event (every status change, every carrier push)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_shipment_events_shipment_id", table_name="shipment_events")


def downgrade() -> None:
    op.create_index("ix_shipment_events_shipment_id", "shipment_events", ["shipment_id"], unique=False)
