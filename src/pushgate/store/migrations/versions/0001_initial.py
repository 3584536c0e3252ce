"""Initial schema: access keys, platform applications, endpoints, topics, subscriptions.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )
    op.create_table(
        "platform_applications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("arn", sa.String(length=512), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_applications")),
        sa.UniqueConstraint("arn", name=op.f("uq_platform_applications_arn")),
    )
    op.create_index(
        "ix_platform_applications_region_id",
        "platform_applications",
        ["region", "id"],
        unique=False,
    )
    op.create_table(
        "topics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("arn", sa.String(length=512), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topics")),
        sa.UniqueConstraint("arn", name=op.f("uq_topics_arn")),
    )
    op.create_index("ix_topics_region_id", "topics", ["region", "id"], unique=False)
    op.create_table(
        "endpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("arn", sa.String(length=700), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("custom_user_data", sa.Text(), nullable=True),
        sa.Column("extra_attributes", sa.JSON(), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("device_id", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["platform_applications.id"],
            name=op.f("fk_endpoints_application_id_platform_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint(
            "application_id", "token", name=op.f("uq_endpoints_application_id_token")
        ),
        sa.UniqueConstraint("arn", name=op.f("uq_endpoints_arn")),
    )
    op.create_index(
        "ix_endpoints_application_id_device_id",
        "endpoints",
        ["application_id", "device_id"],
        unique=False,
    )
    op.create_index(
        "ix_endpoints_application_id_user_id",
        "endpoints",
        ["application_id", "user_id"],
        unique=False,
    )
    op.create_table(
        "subscriptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("arn", sa.String(length=600), nullable=False),
        sa.Column("topic_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("protocol", sa.String(length=32), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("confirmation_token", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["topics.id"],
            name=op.f("fk_subscriptions_topic_id_topics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("arn", name=op.f("uq_subscriptions_arn")),
        sa.UniqueConstraint("confirmation_token", name=op.f("uq_subscriptions_confirmation_token")),
        sa.UniqueConstraint(
            "topic_id",
            "protocol",
            "endpoint",
            name=op.f("uq_subscriptions_topic_id_protocol_endpoint"),
        ),
    )
    op.create_index("ix_subscriptions_endpoint", "subscriptions", ["endpoint"], unique=False)
    op.create_index(
        "ix_subscriptions_topic_id_id", "subscriptions", ["topic_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_topic_id_id", table_name="subscriptions")
    op.drop_index("ix_subscriptions_endpoint", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_endpoints_application_id_user_id", table_name="endpoints")
    op.drop_index("ix_endpoints_application_id_device_id", table_name="endpoints")
    op.drop_table("endpoints")
    op.drop_index("ix_topics_region_id", table_name="topics")
    op.drop_table("topics")
    op.drop_index("ix_platform_applications_region_id", table_name="platform_applications")
    op.drop_table("platform_applications")
    op.drop_table("access_keys")
