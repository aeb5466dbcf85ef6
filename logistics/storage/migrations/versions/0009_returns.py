"""returns: why an attempt failed (on every event), attempts and the last failure on the shipment, and the
hall's decision on a parcel that came back (a linked resend, or a resolution)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("shipment_events") as batch:
        batch.add_column(sa.Column("reason_code", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch.add_column(sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("last_failure", _JSON, nullable=True))
        batch.add_column(sa.Column("resend_of", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch.add_column(sa.Column("resent_as", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch.add_column(sa.Column("resolution", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        for column in ("resolution", "resent_as", "resend_of", "last_failure", "attempts"):
            batch.drop_column(column)
    with op.batch_alter_table("shipment_events") as batch:
        batch.drop_column("reason")
        batch.drop_column("reason_code")
