"""label renders and the shipment's first print time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import logistics.domain.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite can only add columns by copying the table; on PostgreSQL it is a plain ALTER.
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label_printed_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=True))

    op.create_table(
        "label_renders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("fmt", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("size", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("dpi", sa.Integer(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id", "fmt", "size", "dpi", name="uq_label_renders_variant"),
    )


def downgrade() -> None:
    op.drop_table("label_renders")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_column("label_printed_at")
