"""shipment_events.refused: an event the forward-only rule did not apply (e.g. ``in_transit`` pushed after
``delivered``) is kept for the record and the client's API, and this flag keeps it off the public pages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shipment_events") as batch:
        batch.add_column(sa.Column("refused", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("shipment_events") as batch:
        batch.drop_column("refused")
