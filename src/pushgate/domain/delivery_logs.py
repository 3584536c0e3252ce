"""Delivery status logs (specs/sns-api.md sec. 6.3): which outcomes an application logs,
and the SNS-shaped JSON of a record.

An application logs failures once ``FailureFeedbackRoleArn`` is set (all of them), and
successes once ``SuccessFeedbackRoleArn`` is set, sampled at ``SuccessFeedbackSampleRate``
percent (100 when the rate is unset). pushgate has no IAM: the role ARNs only switch
logging on. A record is logged when a delivery is finished (sent, failed for good, or
expired after retries), not for each retried attempt.

Records go to the ``delivery_logs`` table and, with ``PUSHGATE_DELIVERY_LOG_STDOUT``, to
stdout as one JSON object per line (token masked there: stdout is a log).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from pushgate.domain.runtime import Runtime
from pushgate.logs import mask
from pushgate.store import delivery_logs as store
from pushgate.store.delivery_logs import FAILURE, SUCCESS, LogFilter, LogRow, NewLog

__all__ = ["FAILURE", "SUCCESS", "LogFilter", "LogPolicy", "NewLog", "policy_for"]

PAGE_SIZE = 100
# The provider's answer is kept up to this many characters.
RESPONSE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class LogPolicy:
    """What an application logs. ``success_rate`` is a percentage, 0 to 100."""

    failures: bool
    success_rate: float

    def logs(self, success: bool, rng: Callable[[], float] = random.random) -> bool:
        if not success:
            return self.failures
        rate = self.success_rate
        return rate >= 100.0 or (rate > 0.0 and rng() * 100.0 < rate)


def policy_for(attributes: Mapping[str, str]) -> LogPolicy | None:
    """The application's logging policy; None when it logs nothing (the engine's fast path)."""
    success = bool(attributes.get("SuccessFeedbackRoleArn"))
    failures = bool(attributes.get("FailureFeedbackRoleArn"))
    if not (success or failures):
        return None
    rate = 0.0
    if success:
        raw = attributes.get("SuccessFeedbackSampleRate")
        rate = float(raw) if raw else 100.0
    if not failures and rate <= 0.0:
        return None
    return LogPolicy(failures, rate)


def sns_timestamp(epoch: float) -> str:
    """SNS's notification timestamp: ``YYYY-MM-DD HH:MM:SS.fff`` in UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def dwell_time_ms(published_at: float, finished_at: float, latency_ms: float | None) -> int:
    """Publish to hand-off to the provider: the time to the end of the send, less the
    provider's own latency."""
    return max(0, round((finished_at - published_at) * 1000.0 - (latency_ms or 0.0)))


def to_sns(row: LogRow | NewLog, *, token: Callable[[str], str] = lambda t: t) -> dict[str, Any]:
    """A record in SNS's shape, with pushgate's additions (``application``, ``platform``,
    ``reason``, ``loggedAt``) beside it; ``token`` transforms the device token (masking)."""
    return {
        "status": row.status,
        "notification": {
            "messageId": row.message_id,
            "timestamp": sns_timestamp(row.published_at),
        },
        "delivery": {
            "statusCode": row.status_code,
            "dwellTimeMs": row.dwell_time_ms,
            "token": token(row.token),
            "attempts": row.attempts,
            "providerResponse": row.provider_response or "",
            "destination": row.destination,
        },
        "application": row.application_arn,
        "platform": row.platform,
        "reason": row.reason,
        "loggedAt": datetime.fromtimestamp(row.logged_at, UTC).isoformat(timespec="milliseconds"),
    }


def write_lines(logs: Iterable[NewLog], out: TextIO | None = None) -> None:
    """Print ``logs`` as JSON lines (tokens masked), for ``PUSHGATE_DELIVERY_LOG_STDOUT``."""
    stream = out or sys.stdout
    stream.write("".join(json.dumps(to_sns(r, token=mask)) + "\n" for r in logs))
    stream.flush()


async def page(
    rt: Runtime, f: LogFilter, *, show_tokens: bool = True
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of records as SNS-shaped dicts, each with its ``id``, and the cursor of
    the next page (pass it as ``after``), None when this one was not full."""
    rows = await rt.db.read(store.query, f)
    items = [
        {"id": str(r.id), **to_sns(r, token=(lambda t: t) if show_tokens else mask)} for r in rows
    ]
    cursor = str(rows[-1].id) if len(rows) == f.limit else None
    return items, cursor


def one_line(item: Mapping[str, Any]) -> str:
    """A record from :func:`page` as one line of text, for ``pushgate logs``."""
    delivery = item["delivery"]
    code = delivery["statusCode"]
    return " ".join(
        [
            item["loggedAt"],
            item["status"],
            "-" if code is None else str(code),
            item["notification"]["messageId"],
            delivery["destination"],
            delivery["token"],
            f"attempts={delivery['attempts']}",
            f"dwell={delivery['dwellTimeMs']}ms",
            *([f"reason={item['reason']}"] if item["reason"] else []),
        ]
    )
