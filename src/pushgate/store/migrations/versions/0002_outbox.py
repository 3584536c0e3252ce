"""The delivery outbox (messages, deliveries) and application health.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("platform_applications", sa.Column("unhealthy_reason", sa.Text(), nullable=True))
    op.add_column(
        "platform_applications",
        sa.Column("unhealthy_since", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("target_arn", sa.String(length=700), nullable=False),
        sa.Column("topic_id", BigId, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("structure", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(length=1024), nullable=True),
        sa.Column("published_at", sa.Float(), nullable=False),
        sa.Column("fanout_cursor", sa.BigInteger(), nullable=True),
        sa.Column("fanout_due_at", sa.Float(), nullable=True),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_messages_message_id")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_messages_dedup_key")),
    )
    op.create_index("ix_messages_fanout_due_at", "messages", ["fanout_due_at"], unique=False)
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("endpoint_id", BigId, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_deliveries_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index("ix_deliveries_state_due_at", "deliveries", ["state", "due_at"], unique=False)
    op.create_index("ix_deliveries_message_id_id", "deliveries", ["message_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("messages")
    with op.batch_alter_table("platform_applications") as batch:
        batch.drop_column("unhealthy_since")
        batch.drop_column("unhealthy_reason")
