"""people: staff, scans, verification guards, complaints, applicant links on shipments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import logistics.domain.tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
HAS_TOKEN = sa.text("applicant_token_hash IS NOT NULL")


def upgrade() -> None:
    # Batch mode: SQLite can only add columns by copying the table; on PostgreSQL it is a plain ALTER.
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("applicant_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("applicant_expires_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("applicant_used_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("applicant_expiry_notified_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_shipments_applicant_token_hash",
            ["applicant_token_hash"],
            unique=True,
            postgresql_where=HAS_TOKEN,
            sqlite_where=HAS_TOKEN,
        )

    op.create_table(
        "staff",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("departments", JSON, nullable=False),
        sa.Column("token_prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("scan_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason_code", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("location", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("scanned_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("response", JSON, nullable=True),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("staff_id", "scan_id", name="uq_scans_staff_scan"),
    )
    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scans_shipment_id"), ["shipment_id"], unique=False)

    op.create_table(
        "verification_guards",
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("shipment_id"),
    )
    op.create_table(
        "complaints",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", logistics.domain.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_client_id_id", ["client_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaints_shipment_id"), ["shipment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaints_shipment_id"))
        batch_op.drop_index("ix_complaints_client_id_id")
    op.drop_table("complaints")
    op.drop_table("verification_guards")
    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scans_shipment_id"))
    op.drop_table("scans")
    op.drop_table("staff")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index("ix_shipments_applicant_token_hash")
        batch_op.drop_column("applicant_expiry_notified_at")
        batch_op.drop_column("applicant_used_at")
        batch_op.drop_column("applicant_expires_at")
        batch_op.drop_column("applicant_token_hash")
