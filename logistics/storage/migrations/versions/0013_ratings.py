"""好差评: ratings (one per shipment) and follow_ups (one per bad rating)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from logistics.domain.tables import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sqlmodel.sql.sqltypes.AutoString(length=40)


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", ID, nullable=False),
        sa.Column("shipment_id", ID, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id", name="uq_ratings_shipment"),
    )
    op.create_index("ix_ratings_client_id_id", "ratings", ["client_id", "id"], unique=False)
    op.create_table(
        "follow_ups",
        sa.Column("id", ID, nullable=False),
        sa.Column("rating_id", ID, nullable=False),
        sa.Column("shipment_id", ID, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("due_by", sa.Date(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("closed_by", ID, nullable=True),
        sa.ForeignKeyConstraint(["rating_id"], ["ratings.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rating_id", name="uq_follow_ups_rating"),
    )
    op.create_index("ix_follow_ups_client_id_id", "follow_ups", ["client_id", "id"], unique=False)
    op.create_index("ix_follow_ups_shipment_id", "follow_ups", ["shipment_id"], unique=False)


def downgrade() -> None:
    op.drop_table("follow_ups")
    op.drop_table("ratings")
