"""HTTP/HTTPS subscriptions: their outbox, and the state of their confirmation.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscription_deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message_pk", _ID, nullable=True),
        sa.Column("sns_message_id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", _ID, nullable=False),
        sa.Column("subscription_arn", sa.String(length=600), nullable=False),
        sa.Column("topic_arn", sa.String(length=512), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("token", sa.String(length=256), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_pk"],
            ["messages.id"],
            name="fk_subscription_deliveries_message_pk_messages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_subscription_deliveries"),
    )
    op.create_index(
        "ix_subscription_deliveries_state_due_at", "subscription_deliveries", ["state", "due_at"]
    )
    op.create_index(
        "ix_subscription_deliveries_message_pk", "subscription_deliveries", ["message_pk"]
    )
    op.create_index("ix_subscription_deliveries_token", "subscription_deliveries", ["token"])
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("confirmation_expires_at", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column(
                "authenticate_on_unsubscribe",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("authenticate_on_unsubscribe")
        batch.drop_column("confirmation_expires_at")
    op.drop_index("ix_subscription_deliveries_token", table_name="subscription_deliveries")
    op.drop_index("ix_subscription_deliveries_message_pk", table_name="subscription_deliveries")
    op.drop_index("ix_subscription_deliveries_state_due_at", table_name="subscription_deliveries")
    op.drop_table("subscription_deliveries")
