"""The statements of a leased work queue, shared by the push outbox (``deliveries``) and
the HTTP/S subscribers' outbox (``subscription_deliveries``).

A queue table has ``id``, ``state``, ``due_at`` and ``attempts``. A row in state
``queued`` is due at ``due_at``; claiming moves ``due_at`` a lease into the future and
counts an attempt, so a row whose worker died is due again when the lease runs out. On
PostgreSQL concurrent claims skip each other's rows (``FOR UPDATE SKIP LOCKED``); SQLite's
write lock serialises them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, Update, bindparam, select, update

QUEUED = "queued"


def claim_statement(table: Table, *returning: Any) -> Update:
    """Lease up to ``:limit`` rows due at ``:now`` until ``:lease_until``, oldest due
    first, returning ``returning``."""
    due = (
        select(table.c.id)
        .where(table.c.state == QUEUED, table.c.due_at <= bindparam("now"))
        .order_by(table.c.due_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(due_at=bindparam("lease_until"), attempts=table.c.attempts + 1)
        .returning(*returning)
    )


def release_statement(table: Table) -> Update:
    """Give the claimed row ``:row_id`` back, due at ``:due_at``; the claim was not an
    attempt."""
    return (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(due_at=bindparam("due_at"), attempts=table.c.attempts - 1)
    )
