"""Delivery visibility beyond SNS: where each delivery of a message stands.

SNS only reports delivery through CloudWatch logs; pushgate answers, per message, how many
deliveries are queued, sent, failed or expired, and for each one its endpoint, attempts,
the provider's status and reason, and the provider's latency; and for a topic message,
where each HTTP/S subscriber's POST stands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pushgate.domain.runtime import Runtime
from pushgate.store import outbox
from pushgate.store import subscription_deliveries as post_store

PAGE_SIZE = 100


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


async def get(
    rt: Runtime, message_id: str, *, after: int = 0, limit: int = PAGE_SIZE
) -> dict[str, Any] | None:
    """The status of a message as a JSON-ready dict, or None if there is no such message.

    ``deliveries`` holds one page, in delivery order; ``next`` is the cursor of the next
    page (pass it as ``after``), None on the last.
    """
    status = await rt.db.read(outbox.message_status, message_id, after=after, limit=limit + 1)
    if status is None:
        return None
    posts = await rt.db.read(post_store.of_message, message_id, PAGE_SIZE)
    page = status.deliveries[:limit]
    counts = {state: status.counts.get(state, 0) for state in outbox.STATES}
    return {
        "messageId": status.message_id,
        "target": status.target_arn,
        "publishedAt": _iso(status.published_at),
        "fanoutComplete": status.fanout_done,
        "deliveries": status.delivery_count,
        "counts": counts,
        "items": [
            {
                "endpoint": d.endpoint_arn,
                "state": d.state,
                "attempts": d.attempts,
                "statusCode": d.status_code,
                "reason": d.reason,
                # The provider's answer (or the transport's error) when it was not a success.
                "response": d.response,
                "finishedAt": _iso(d.finished_at),
                "latencyMs": round(d.latency_ms, 3) if d.latency_ms is not None else None,
                "nextAttemptAt": _iso(d.due_at) if d.state == outbox.QUEUED else None,
            }
            for d in page
        ],
        "next": str(page[-1].id) if len(status.deliveries) > limit else None,
        # A topic message's HTTP/S subscribers (the first 100), their URLs' passwords masked.
        "subscribers": [
            {
                "subscription": p.subscription_arn,
                "url": p.url,
                "state": p.state,
                "attempts": p.attempts,
                "statusCode": p.status_code,
                "reason": p.reason,
                "finishedAt": _iso(p.finished_at),
            }
            for p in posts
        ],
    }
