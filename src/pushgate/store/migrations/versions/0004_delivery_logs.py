"""Delivery status logs: the SNS-shaped records of delivery outcomes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "delivery_logs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("application_id", _ID, nullable=False),
        sa.Column("application_arn", sa.String(length=512), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.Float(), nullable=False),
        sa.Column("logged_at", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("dwell_time_ms", sa.Integer(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_response", sa.Text(), nullable=True),
        sa.Column("destination", sa.String(length=700), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_logs"),
    )
    op.create_index("ix_delivery_logs_application_id_id", "delivery_logs", ["application_id", "id"])
    op.create_index("ix_delivery_logs_logged_at", "delivery_logs", ["logged_at"])
    op.create_index("ix_delivery_logs_message_id", "delivery_logs", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_logs_message_id", table_name="delivery_logs")
    op.drop_index("ix_delivery_logs_logged_at", table_name="delivery_logs")
    op.drop_index("ix_delivery_logs_application_id_id", table_name="delivery_logs")
    op.drop_table("delivery_logs")
