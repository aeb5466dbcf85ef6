"""When a parcel was delivered, kept on the shipment (``delivered_at``: its first delivery event not refused), as
``handed_at`` is for the pickup (0023): today's delivered parcels are a filter on the rows the console's index
yields, not a probe of each one's events. Filled here from the events recorded so far

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from logistics.domain.tables import UTCDateTime

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DELIVERIES = "SELECT shipment_id FROM shipment_events WHERE status = 'delivered' AND refused = false"


def upgrade() -> None:
    op.add_column("shipments", sa.Column("delivered_at", UTCDateTime(), nullable=True))
    # Only the shipments with a delivery on record: the rest keep NULL (and are not rewritten).
    op.execute(
        "UPDATE shipments SET delivered_at = (SELECT min(e.occurred_at) FROM shipment_events AS e"
        " WHERE e.shipment_id = shipments.id AND e.status = 'delivered' AND e.refused = false)"
        f" WHERE shipments.id IN ({DELIVERIES})"
    )


def downgrade() -> None:
    # A plain DROP COLUMN, as in 0023: a batch copy would lose the applicant expression indexes on SQLite.
    op.drop_column("shipments", "delivered_at")
