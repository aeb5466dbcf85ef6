"""The public 公示 figures: their store (gongshi_cells, gongshi_state) and the indexes the refresh reads by
(picked_up and ending events by when they were recorded;
ending events by when they happened)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from logistics.domain.tables import GONGSHI_ENDED_WHERE, GONGSHI_RECORDED_WHERE, JSONType, UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gongshi_cells",
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("figures", JSONType, nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("month", "department"),
    )
    op.create_table(
        "gongshi_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watermark", UTCDateTime(), nullable=True),
        sa.Column("refreshed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_shipment_events_gongshi_recorded",
        "shipment_events",
        ["recorded_at"],
        postgresql_where=sa.text(GONGSHI_RECORDED_WHERE),
        sqlite_where=sa.text(GONGSHI_RECORDED_WHERE),
    )
    op.create_index(
        "ix_shipment_events_gongshi_ended",
        "shipment_events",
        ["occurred_at"],
        postgresql_where=sa.text(GONGSHI_ENDED_WHERE),
        sqlite_where=sa.text(GONGSHI_ENDED_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_shipment_events_gongshi_ended", table_name="shipment_events")
    op.drop_index("ix_shipment_events_gongshi_recorded", table_name="shipment_events")
    op.drop_table("gongshi_state")
    op.drop_table("gongshi_cells")
