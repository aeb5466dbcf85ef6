"""Who pays EMS for a shipment (``shipments.payment_mode``: monthly | sender_pays), fixed at create

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable without a default: no table rewrite on PostgreSQL, a plain ADD COLUMN on SQLite. Shipments created
    # before keep null (their orders went out with the carrier's per-kind default, which is what monthly sends).
    op.add_column("shipments", sa.Column("payment_mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("payment_mode")
