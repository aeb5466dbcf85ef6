"""The console's actions: the clerk behind an event (``shipment_events.staff_id``) and the hall's answer to a
complaint (``complaints.answer``, ``answered_at``, ``answered_by``)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from logistics.domain.tables import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without a default: no table rewrite on PostgreSQL, a plain ADD COLUMN on SQLite.
    op.add_column("shipment_events", sa.Column("staff_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.add_column("complaints", sa.Column("answer", sa.Text(), nullable=True))
    op.add_column("complaints", sa.Column("answered_at", UTCDateTime(), nullable=True))
    op.add_column("complaints", sa.Column("answered_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("answered_by")
        batch.drop_column("answered_at")
        batch.drop_column("answer")
    with op.batch_alter_table("shipment_events") as batch:
        batch.drop_column("staff_id")
