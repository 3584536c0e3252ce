"""The registration service: a device id is unique within an application, a user's
devices are found across applications, and a device's locale is kept.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_NOT_NULL_DEVICE = sa.text("device_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=35), nullable=True))
    op.drop_index("ix_endpoints_application_id_device_id", table_name="endpoints")
    op.create_index(
        "uq_endpoints_application_id_device_id",
        "endpoints",
        ["application_id", "device_id"],
        unique=True,
        sqlite_where=_NOT_NULL_DEVICE,
        postgresql_where=_NOT_NULL_DEVICE,
    )
    op.create_index("ix_endpoints_user_id", "endpoints", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_endpoints_user_id", table_name="endpoints")
    op.drop_index("uq_endpoints_application_id_device_id", table_name="endpoints")
    op.create_index(
        "ix_endpoints_application_id_device_id",
        "endpoints",
        ["application_id", "device_id"],
        unique=False,
    )
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("locale")
