"""The courier's hand-over manifest (交接清单): ``manifests`` and their parcels, ``manifest_items``

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from logistics.domain.tables import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "manifests",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("taken_over_by", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("taken_over_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["staff.id"]),
        sa.ForeignKeyConstraint(["taken_over_by"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    with op.batch_alter_table("manifests") as batch:
        batch.create_index("ix_manifests_department_created", ["department", "created_at"], unique=False)
    op.create_table(
        "manifest_items",
        sa.Column("manifest_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
        sa.ForeignKeyConstraint(["manifest_id"], ["manifests.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("manifest_id", "shipment_id"),
    )
    with op.batch_alter_table("manifest_items") as batch:
        batch.create_index(batch.f("ix_manifest_items_shipment_id"), ["shipment_id"], unique=False)


def downgrade() -> None:
    op.drop_table("manifest_items")
    op.drop_table("manifests")
