"""What the delivery engine writes after its sends: one batch of outcomes, recorded in
one transaction.

The engine's sends settle into an :class:`Outcomes` batch (finished and retried
deliveries, released claims, dead and replaced tokens, application health, delivery
status logs, and the application events they raise), and its record loop writes a batch
at a time with :meth:`Outcomes.write`: many sends' worth of SQL in one commit, which is
what lets the engine keep up with the providers (bench/delivery.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from pushgate.domain import events
from pushgate.store import applications as app_store
from pushgate.store import delivery_logs as log_store
from pushgate.store import endpoints as endpoint_store
from pushgate.store import outbox
from pushgate.store.applications import ApplicationRow


@dataclass(slots=True)
class Watched:
    """A provider's verdict on an endpoint whose application wants EndpointUpdated events:
    its token is dead (``new_token`` None) or has a canonical replacement."""

    app: ApplicationRow
    target: outbox.Target
    new_token: str | None


@dataclass(slots=True)
class Failure:
    """A DeliveryFailure event to write with the delivery's outcome."""

    app: ApplicationRow
    endpoint_arn: str
    message_id: str
    attempts: int
    failure_type: str
    failure_message: str


@dataclass
class Outcomes:
    finished: list[outbox.Finished] = field(default_factory=list)
    retries: list[outbox.Retry] = field(default_factory=list)
    released: list[tuple[int, float]] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)
    new_tokens: list[tuple[int, str, str]] = field(default_factory=list)
    unhealthy: dict[int, str] = field(default_factory=dict)
    healthy: set[int] = field(default_factory=set)
    logs: list[log_store.NewLog] = field(default_factory=list)
    # Only for applications with event topics (the common case has none).
    watched: list[Watched] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.finished) + len(self.retries) + len(self.released)

    def any(self) -> bool:
        """Whether there is anything to write."""
        return bool(
            len(self)
            or self.dead
            or self.new_tokens
            or self.watched
            or self.failures
            or self.unhealthy
            or self.healthy
            or self.logs
        )

    def merged(self, later: Outcomes) -> Outcomes:
        """This batch followed by ``later`` (a failed write's batch goes back in front)."""
        return Outcomes(
            self.finished + later.finished,
            self.retries + later.retries,
            self.released + later.released,
            self.dead + later.dead,
            self.new_tokens + later.new_tokens,
            {**self.unhealthy, **later.unhealthy},
            self.healthy | later.healthy,
            self.logs + later.logs,
            self.watched + later.watched,
            self.failures + later.failures,
        )

    def write(self, conn: Connection, now: datetime) -> int:
        """Record the batch in the caller's transaction; how many events it wrote."""
        outbox.record(conn, self.finished, self.retries)
        outbox.release(conn, self.released)
        endpoint_store.disable_dead(conn, self.dead, now)
        for endpoint_id, old, new in self.new_tokens:
            endpoint_store.replace_token(conn, endpoint_id, old, new, now)
        for app_id, reason in self.unhealthy.items():
            app_store.mark_unhealthy(conn, app_id, reason, now)
        for app_id in self.healthy - set(self.unhealthy):
            app_store.mark_healthy(conn, app_id)
        log_store.insert_many(conn, self.logs)
        if not (self.watched or self.failures):
            return 0
        return self._write_events(conn, now)

    def _write_events(self, conn: Connection, now: datetime) -> int:
        """Apply the watched endpoints' verdicts, and write the events of the batch."""
        emitter = events.Emitter(conn, now)
        for w in self.watched:
            target = w.target
            if w.new_token is None:
                changed = endpoint_store.disable_if_dead(conn, target.id, target.token, now)
            else:
                changed = endpoint_store.replace_token(
                    conn, target.id, target.token, w.new_token, now
                )
            if changed:
                emitter.emit(w.app, events.UPDATED, target.arn)
        for f in self.failures:
            emitter.emit(
                f.app,
                events.DELIVERY_FAILURE,
                f.endpoint_arn,
                MessageId=f.message_id,
                DeliveryAttempts=f.attempts,
                FailureType=f.failure_type,
                FailureMessage=f.failure_message,
            )
        return emitter.count
