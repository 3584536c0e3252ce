"""``Retry-After`` as providers send it: delay seconds or an HTTP-date (RFC 9110 sec. 10.2.3).

specs/providers.md sec. 0.2: honour it in both forms (firebase-admin parses both; sygnal's
``int()`` chokes on a date), capped to a sane maximum.
"""

from __future__ import annotations

import time
from datetime import UTC
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 3600.0
"""One hour: a longer hint is more likely a bug than a plan."""


def parse_retry_after(
    value: str | None, *, now: float | None = None, cap: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds to wait, within ``[0, cap]``; None when ``value`` is absent or unreadable.

    ``now`` (epoch seconds, default the current time) anchors an HTTP-date; a date in the
    past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(int(text)), cap)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # asctime and "-0000" dates carry no zone: HTTP-dates are GMT
        moment = moment.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return min(max(0.0, moment.timestamp() - current), cap)
