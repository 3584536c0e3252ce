"""``maxReceivesPerSecond``: the throttle policy of an HTTP/S subscription.

SNS spaces the deliveries to a throttled subscription ("throttlePolicy", in "Amazon SNS
message delivery retries", https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html).
pushgate gives each subscription one slot every ``1 / rate`` seconds, per worker process:
a post waits for its slot when it is near, and goes back to the outbox when it is not, so
that a busy subscription does not hold the sender's capacity.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    def __init__(self, max_wait: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_wait = max_wait
        self._clock = clock
        self._next_slot: dict[int, float] = {}

    def wait(self, subscription_id: int, rate: float | None) -> float | None:
        """Seconds to wait before posting to the subscription (0 when not throttled), its
        slot taken; None when its next slot is more than ``max_wait`` away (none taken)."""
        if not rate:
            return 0.0
        now = self._clock()
        slot = max(now, self._next_slot.get(subscription_id, now))
        if slot - now > self._max_wait:
            return None
        self._next_slot[subscription_id] = slot + 1.0 / rate
        return slot - now
