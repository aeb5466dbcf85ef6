"""When a parcel was handed to the post, kept on the shipment (``handed_at``: its first pickup event not refused).
The console's lists, the queue and today's picked-up parcels read it with the row instead of each shipment's
events. Filled here from the events recorded so far

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from logistics.domain.tables import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PICKUPS = "SELECT shipment_id FROM shipment_events WHERE status = 'picked_up' AND refused = false"


def upgrade() -> None:
    op.add_column("shipments", sa.Column("handed_at", UTCDateTime(), nullable=True))
    # Only the shipments with a pickup on record: the rest keep NULL (and are not rewritten).
    op.execute(
        "UPDATE shipments SET handed_at = (SELECT min(e.occurred_at) FROM shipment_events AS e"
        " WHERE e.shipment_id = shipments.id AND e.status = 'picked_up' AND e.refused = false)"
        f" WHERE shipments.id IN ({PICKUPS})"
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+), not a batch copy of the table: that would lose the expression indexes
    # SQLAlchemy cannot reflect (the applicant's phone and name).
    op.drop_column("shipments", "handed_at")
