"""When to try a failed delivery again (specs/providers.md sec. 0.2)."""

from __future__ import annotations

import random
from dataclasses import dataclass

# A Retry-After longer than this is capped: the message would mostly be stale by then.
MAX_RETRY_AFTER_SECONDS = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in delay.

    The delay before attempt ``n + 1`` is drawn uniformly from ``[d/2, d]`` with
    ``d = min(cap, base * 2**(n-1))``: half of it jittered, so that a burst of failures
    (a provider outage) does not come back as one burst, and never close to zero, so that
    a retry never hammers a provider that just said no.
    """

    base_seconds: float = 1.0
    cap_seconds: float = 600.0
    max_attempts: int = 10

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt; a provider's
        Retry-After hint is a lower bound."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(attempts - 1, 0))
        delay: float = ceiling / 2 + random.random() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return delay

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
