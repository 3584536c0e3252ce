"""Pruning beyond SNS: stale endpoints go, and so do old messages.

SNS keeps an endpoint forever, enabled or not, so a registry fills up with dead tokens.
pushgate deletes, per :class:`PrunePolicy`:

* endpoints **disabled** for longer than ``disabled_after`` (a provider declared the token
  dead, or someone disabled it, and nobody re-enabled it since);
* endpoints whose token was **not refreshed** for ``stale_after`` (``token_updated_at``:
  set when the endpoint is created and whenever its token is set again);
* **messages** published longer than ``message_retention`` ago whose every delivery is
  settled (sent, failed or expired; no fan-out pending), with their deliveries. A message
  still delivering stays however old it is. An idempotency key is remembered as long as
  its message: after retention, publishing with the same key sends again;
* **delivery status logs** logged longer than ``message_retention`` ago.

Each batch is its own short transaction (``batch_size`` rows), with a pause between
batches, so pruning millions of rows never holds the database for long. A dry run walks
the same batches and deletes nothing.

A pruned endpoint of an application with an ``EventEndpointDeleted`` topic gets its
EndpointDeleted event (:mod:`pushgate.domain.events`), written in its batch's transaction.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from pushgate.domain import events
from pushgate.domain.runtime import Runtime
from pushgate.store import applications as app_store
from pushgate.store import delivery_logs as log_store
from pushgate.store import pruning as store
from pushgate.store import subscription_deliveries as post_store
from pushgate.store.pruning import DISABLED, STALE

log = logging.getLogger("pushgate.pruning")

BATCH_SIZE = 500
SAMPLE_SIZE = 5

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_OFF = frozenset({"", "0", "off", "none", "never"})


def parse_duration(value: str | float | timedelta | None) -> timedelta | None:
    """``30d``, ``12h``, ``1d12h``, ``90m``, ``45s``, ``2w`` or plain seconds; ``0``,
    ``off``, ``none``, ``never`` and None mean no limit (the rule is off), as does zero."""
    if value is None or isinstance(value, timedelta):
        seconds = value.total_seconds() if value is not None else 0.0
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if text in _OFF:
            return None
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"not a duration: {value!r} (use e.g. 30d, 12h, 90m, 1d12h, or off)"
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return timedelta(seconds=seconds) if seconds else None


def format_duration(value: timedelta | None) -> str:
    """The shortest of ``parse_duration``'s spellings: ``30d``, ``1d12h``, ``off``."""
    if value is None:
        return "off"
    seconds, text = int(value.total_seconds()), ""
    for unit in "dhms":
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            text += f"{count}{unit}"
    return text or "0s"


@dataclass(frozen=True)
class PrunePolicy:
    """How old is too old; a rule that is None is off."""

    disabled_after: timedelta | None = timedelta(days=30)
    stale_after: timedelta | None = None
    message_retention: timedelta | None = timedelta(days=14)

    def __post_init__(self) -> None:
        for name in ("disabled_after", "stale_after", "message_retention"):
            value = getattr(self, name)
            if value is not None and value <= timedelta(0):
                raise ValueError(f"{name} must be positive, or None to turn the rule off")

    def to_json(self) -> dict[str, str]:
        return {
            "disabledAfter": format_duration(self.disabled_after),
            "staleAfter": format_duration(self.stale_after),
            "messageRetention": format_duration(self.message_retention),
        }


@dataclass
class ApplicationReport:
    """What went (or would go) from one platform application."""

    disabled: int = 0
    stale: int = 0
    # A few of the endpoints' ARNs, for a human to check before running without --dry-run.
    sample: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.disabled + self.stale


@dataclass
class PruneReport:
    dry_run: bool
    now: datetime
    policy: PrunePolicy
    applications: dict[str, ApplicationReport] = field(default_factory=dict)
    messages: int = 0
    deliveries: int = 0
    # Deleted delivery status logs (not counted by a dry run).
    delivery_logs: int = 0
    confirmations: int = 0  # finished (Un)SubscriptionConfirmation posts

    @property
    def disabled(self) -> int:
        return sum(a.disabled for a in self.applications.values())

    @property
    def stale(self) -> int:
        return sum(a.stale for a in self.applications.values())

    @property
    def endpoints(self) -> int:
        return self.disabled + self.stale

    def count(self, endpoint: store.PrunableEndpoint) -> None:
        app = self.applications.setdefault(endpoint.application_arn, ApplicationReport())
        if endpoint.reason == DISABLED:
            app.disabled += 1
        else:
            assert endpoint.reason == STALE, endpoint.reason
            app.stale += 1
        if len(app.sample) < SAMPLE_SIZE:
            app.sample.append(endpoint.arn)

    def to_json(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "now": self.now.isoformat(timespec="seconds"),
            "policy": self.policy.to_json(),
            "endpoints": {"disabled": self.disabled, "stale": self.stale, "total": self.endpoints},
            "applications": {
                arn: {"disabled": a.disabled, "stale": a.stale, "sample": a.sample}
                for arn, a in sorted(self.applications.items())
            },
            "messages": self.messages,
            "deliveries": self.deliveries,
        }


async def prune(
    rt: Runtime,
    policy: PrunePolicy,
    *,
    dry_run: bool,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    pause: float = 0.0,
) -> PruneReport:
    """Delete what ``policy`` condemns (nothing when ``dry_run``) and report it.

    ``pause`` seconds separate batches (0: just let other work run): on SQLite each batch
    holds the one write lock that every request of every process waits for.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or rt.clock()
    report = PruneReport(dry_run, now, policy)
    rules = store.EndpointRules(
        now - policy.disabled_after if policy.disabled_after is not None else None,
        now - policy.stale_after if policy.stale_after is not None else None,
    )
    if rules.active:
        await _prune_endpoints(rt, rules, report, batch_size, pause)
    if policy.message_retention is not None:
        cutoff = (now - policy.message_retention).timestamp()
        await _prune_messages(rt, cutoff, report, batch_size, pause)
        if not dry_run:
            report.delivery_logs += await _delete_older(
                rt, log_store.delete_older_than, cutoff, batch_size, pause
            )
            report.confirmations += await _delete_older(
                rt, post_store.prune_confirmations, cutoff, batch_size, pause
            )
    log.info(
        "pruning done" if not dry_run else "pruning dry run done",
        extra={
            "action": "prune",
            "dry_run": dry_run,
            "endpoints_disabled": report.disabled,
            "endpoints_stale": report.stale,
            "messages": report.messages,
            "deliveries": report.deliveries,
            "delivery_logs": report.delivery_logs,
            "confirmations": report.confirmations,
        },
    )
    return report


async def _delete_older(
    rt: Runtime,
    delete: Callable[[Connection, float, int], int],
    cutoff: float,
    batch_size: int,
    pause: float,
) -> int:
    """Run ``delete(conn, cutoff, batch_size)`` in its own transactions until it deletes
    less than a batch; how many rows went."""
    total = 0
    while True:
        deleted = await rt.db.write(delete, cutoff, batch_size)
        total += deleted
        if deleted < batch_size:
            return total
        await asyncio.sleep(pause)


async def _prune_endpoints(
    rt: Runtime, rules: store.EndpointRules, report: PruneReport, batch_size: int, pause: float
) -> None:
    cursor: int | None = 0
    while cursor is not None:
        if report.dry_run:
            found = await rt.db.read(store.prunable_endpoints, rules, cursor, batch_size)
            gone = found
            cursor = found[-1].id if len(found) == batch_size else None
        else:
            gone, cursor, emitted = await rt.db.write(
                _delete_endpoints, rt, rules, cursor, batch_size
            )
            if emitted:
                rt.work.notify()
        for endpoint in gone:
            report.count(endpoint)
        await asyncio.sleep(pause)


def _delete_endpoints(
    conn: Connection, rt: Runtime, rules: store.EndpointRules, after_id: int, limit: int
) -> tuple[list[store.PrunableEndpoint], int | None, int]:
    """One batch of :func:`store.delete_endpoints`, with the EndpointDeleted events of the
    applications that want them; also how many events were written."""
    gone, cursor = store.delete_endpoints(conn, rules, after_id, limit)
    watched = {g.application_arn for g in gone if g.deleted_event_topic is not None}
    if not watched:
        return gone, cursor, 0
    emitter = events.Emitter(conn, rt.clock())
    apps = {arn: app_store.get(conn, arn) for arn in sorted(watched)}
    for endpoint in gone:
        app = apps.get(endpoint.application_arn)
        if app is not None:
            emitter.emit(app, events.DELETED, endpoint.arn)
    return gone, cursor, emitter.count


async def _prune_messages(
    rt: Runtime, cutoff: float, report: PruneReport, batch_size: int, pause: float
) -> None:
    cursor = 0
    while True:
        scanned = await rt.db.read(store.scan_messages, cutoff, cursor, batch_size)
        if not scanned:
            return
        cursor = scanned[-1].id
        expired = [s for s in scanned if s.expired]
        if report.dry_run:
            report.messages += len(expired)
            report.deliveries += sum(s.delivery_count for s in expired)
        elif expired:
            ids = [s.id for s in expired]
            while True:
                deliveries, messages = await rt.db.write(store.delete_messages, ids, batch_size)
                report.deliveries += deliveries
                report.messages += messages
                if deliveries < batch_size:
                    break
                await asyncio.sleep(pause)
        if len(scanned) < batch_size or min(s.published_at for s in scanned) >= cutoff:
            return
        await asyncio.sleep(pause)
