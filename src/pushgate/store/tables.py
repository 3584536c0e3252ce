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
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
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

# Keys of the server itself, encrypted with the secret key: the SNS message-signing key
# (signing_key.py), shared by every process that shares the database.
server_keys = Table(
    "server_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("key_encrypted", LargeBinary, nullable=False),
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
    # Set when the provider rejects the credentials (a configuration error); None: healthy.
    Column("unhealthy_reason", Text, nullable=True),
    Column("unhealthy_since", DateTime(timezone=True), nullable=True),
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
    Column("locale", String(35), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("token_updated_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("application_id", "token"),
    Index("ix_endpoints_application_id_user_id", "application_id", "user_id"),
    Index("ix_endpoints_user_id", "user_id"),
    # One endpoint per device of an application (the registration service's key).
    Index(
        "uq_endpoints_application_id_device_id",
        "application_id",
        "device_id",
        unique=True,
        sqlite_where=text("device_id IS NOT NULL"),
        postgresql_where=text("device_id IS NOT NULL"),
    ),
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
    # Epoch seconds after which the confirmation token no longer confirms (SNS: 2 days).
    Column("confirmation_expires_at", Float, nullable=True),
    # ConfirmSubscription's AuthenticateOnUnsubscribe: the UnsubscribeURL then needs a key.
    Column("authenticate_on_unsubscribe", Boolean, nullable=False, server_default=false()),
    # The password of an HTTPS URL's user info, encrypted; ``endpoint`` shows it masked.
    Column("password_encrypted", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("topic_id", "protocol", "endpoint"),
    # Fan-out walks a topic's subscriptions in id order, a chunk at a time.
    Index("ix_subscriptions_topic_id_id", "topic_id", "id"),
    Index("ix_subscriptions_endpoint", "endpoint"),
)

# The outbox. Times are epoch seconds (floats): the delivery engine compares them on every
# claim, and a float compares the same way on both engines.
messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("region", String(32), nullable=False),
    # The endpoint or topic ARN published to.
    Column("target_arn", String(700), nullable=False),
    Column("topic_id", BigId, nullable=True),
    Column("body", Text, nullable=False),
    # The parsed MessageStructure=json object, else None.
    Column("structure", JSON(none_as_null=True), nullable=True),
    Column("subject", Text, nullable=True),
    # The message attributes, {name: [type, value]}: AWS.SNS.MOBILE.* ones shape a push.
    Column("attributes", JSON, nullable=False),
    # "{target}\n{key}" for an idempotent publish; a second publish with it is not sent.
    Column("dedup_key", String(1024), nullable=True, unique=True),
    Column("published_at", Float, nullable=False),
    # Topic fan-out: the last subscription id expanded into deliveries, and when the
    # fan-out job is next due (a lease while a worker expands it); None once done.
    Column("fanout_cursor", BigInteger, nullable=True),
    Column("fanout_due_at", Float, nullable=True),
    Column("delivery_count", Integer, nullable=False, default=0),
    Index("ix_messages_fanout_due_at", "fanout_due_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    # No foreign key: deleting an endpoint keeps the history of what was sent to it.
    Column("endpoint_id", BigId, nullable=False),
    # queued (waiting, retrying, or leased by a worker until due_at), sent, failed, expired.
    Column("state", String(16), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("status_code", Integer, nullable=True),
    Column("reason", String(256), nullable=True),
    Column("response", Text, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("latency_ms", Float, nullable=True),
    # Claiming reads due rows of one state in due order.
    Index("ix_deliveries_state_due_at", "state", "due_at"),
    Index("ix_deliveries_message_id_id", "message_id", "id"),
)

# Delivery status logs (SNS's SuccessFeedbackRoleArn / FailureFeedbackRoleArn): one row per
# logged outcome, written in the same transaction as the outcome. No foreign keys: a log
# outlives its application and endpoint, and is pruned with the messages' retention.
delivery_logs = Table(
    "delivery_logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("application_id", BigId, nullable=False),
    Column("application_arn", String(512), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("status", String(8), nullable=False),  # SUCCESS or FAILURE
    Column("message_id", String(64), nullable=False),
    Column("published_at", Float, nullable=False),
    Column("logged_at", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("dwell_time_ms", Integer, nullable=False),
    Column("token", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("provider_response", Text, nullable=True),
    Column("destination", String(700), nullable=False),
    Column("reason", String(256), nullable=True),
    # Keyset paging per application; pruning and `since` by time; lookups by message.
    Index("ix_delivery_logs_application_id_id", "application_id", "id"),
    Index("ix_delivery_logs_logged_at", "logged_at"),
    Index("ix_delivery_logs_message_id", "message_id"),
)

# The outbox of HTTP/HTTPS subscriptions: one row per SNS message POSTed to a subscriber,
# a topic message's Notification or a (Un)SubscriptionConfirmation. Claimed with a lease,
# like ``deliveries``. It names its subscription by id and copies its ARN and URL: an
# UnsubscribeConfirmation goes out after the subscription is gone.
subscription_deliveries = Table(
    "subscription_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # Notification, SubscriptionConfirmation or UnsubscribeConfirmation.
    Column("kind", String(32), nullable=False),
    Column("message_pk", BigId, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
    Column("sns_message_id", String(64), nullable=False),
    Column("subscription_id", BigId, nullable=False),
    Column("subscription_arn", String(600), nullable=False),
    Column("topic_arn", String(512), nullable=False),
    Column("url", Text, nullable=False),
    # A confirmation's token (an UnsubscribeConfirmation's restores the subscription).
    Column("token", String(256), nullable=True),
    Column("state", String(16), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("status_code", Integer, nullable=True),
    Column("reason", String(256), nullable=True),
    Column("response", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_subscription_deliveries_state_due_at", "state", "due_at"),
    Index("ix_subscription_deliveries_message_pk", "message_pk"),
    Index("ix_subscription_deliveries_token", "token"),
)
