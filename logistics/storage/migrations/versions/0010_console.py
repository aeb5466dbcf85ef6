"""The hall's console: server-side sign-in sessions, the personal-data access log, and the statutory deadline
(``due_by``, ``overdue_at``) on shipments, with an index for one department's shipments by creation time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from logistics.domain.tables import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("due_by", sa.Date(), nullable=True))
        batch.add_column(sa.Column("overdue_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_shipments_department_created", ["department", "created_at"], unique=False)
    op.create_table(
        "console_sessions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("staff_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("csrf_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("console_sessions") as batch:
        batch.create_index(batch.f("ix_console_sessions_staff_id"), ["staff_id"], unique=False)
        batch.create_index(batch.f("ix_console_sessions_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "personal_data_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("shipment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("viewed_at", UTCDateTime(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("view", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("personal_data_access") as batch:
        batch.create_index(batch.f("ix_personal_data_access_shipment_id"), ["shipment_id"], unique=False)
        batch.create_index(batch.f("ix_personal_data_access_viewed_at"), ["viewed_at"], unique=False)
        batch.create_index("ix_personal_data_access_staff", ["staff_id", "viewed_at"], unique=False)


def downgrade() -> None:
    op.drop_table("personal_data_access")
    op.drop_table("console_sessions")
    with op.batch_alter_table("shipments") as batch:
        batch.drop_index("ix_shipments_department_created")
        batch.drop_column("overdue_at")
        batch.drop_column("due_by")
