"""The schema, as SQLAlchemy Core tables. Alembic migrations in ``migrations/`` create it.

Shaped for what comes next, not only for the control plane:

* ``endpoints`` has a compact integer key so that the delivery outbox can reference
  millions of them cheaply; lists page by ``(application_id, id)`` (keyset pagination,
  never OFFSET); the token is unique per application.
* ``endpoints.user_id`` and ``device_id`` carry the registration service's user-device
  mapping (one user per endpoint per application).
* ``token_updated_at`` and ``disabled_at`` let stale-token pruning find old endpoints.
* Secrets (provider credentials, access-key secrets) are stored only encrypted.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Integer primary keys: SQLite only auto-increments INTEGER PRIMARY KEY columns.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("secret_encrypted", LargeBinary, nullable=False),
    Column("name", String(256), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

platform_applications = Table(
    "platform_applications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("arn", String(512), nullable=False, unique=True),
    Column("region", String(32), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("name", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    # Non-secret attributes as SNS returns them (Enabled excluded: it is a column).
    Column("attributes", JSON, nullable=False),
    # JSON {"PlatformPrincipal": ..., "PlatformCredential": ...}, encrypted.
    Column("credentials_encrypted", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_platform_applications_region_id", "region", "id"),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        BigId,
        ForeignKey("platform_applications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("arn", String(700), nullable=False, unique=True),
    Column("token", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("custom_user_data", Text, nullable=True),
    # Platform-specific attributes beyond SNS's three (Baidu's ChannelId and UserId).
    Column("extra_attributes", JSON(none_as_null=True), nullable=True),
    Column("user_id", String(256), nullable=True),
    Column("device_id", String(256), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("token_updated_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("application_id", "token"),
    Index("ix_endpoints_application_id_user_id", "application_id", "user_id"),
    Index("ix_endpoints_application_id_device_id", "application_id", "device_id"),
)

topics = Table(
    "topics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("arn", String(512), nullable=False, unique=True),
    Column("region", String(32), nullable=False),
    Column("name", String(256), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_topics_region_id", "region", "id"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("arn", String(600), nullable=False, unique=True),
    Column("topic_id", BigId, ForeignKey("topics.id", ondelete="CASCADE"), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("pending", Boolean, nullable=False, default=False),
    Column("confirmation_token", String(256), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("topic_id", "protocol", "endpoint"),
    # Fan-out walks a topic's subscriptions in id order, a chunk at a time.
    Index("ix_subscriptions_topic_id_id", "topic_id", "id"),
    Index("ix_subscriptions_endpoint", "endpoint"),
)
