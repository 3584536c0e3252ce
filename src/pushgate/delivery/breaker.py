"""A circuit breaker per platform application, so that one broken credential does not
stall the others.

When a provider rejects an application's credentials (a ``CONFIG_ERROR``), the breaker
opens: that application's deliveries are put back in the queue, unsent, until a cooldown
ends. Then one probe batch goes out (half-open): success closes the breaker, another
rejection opens it again for twice as long, up to a cap. Changing the application's
attributes (new credentials) resets it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Breaker:
    cooldown: float = 30.0
    max_cooldown: float = 600.0
    open_until: float = 0.0
    failures: int = 0
    probing: bool = False

    def allows(self, now: float) -> bool:
        """Whether deliveries may go out now. When the cooldown has ended, one caller
        gets True (the probe) and the others False until the probe's answer is in."""
        if self.failures == 0:
            return True
        if now < self.open_until or self.probing:
            return False
        self.probing = True
        return True

    def success(self) -> None:
        self.failures, self.probing, self.open_until = 0, False, 0.0

    def failure(self, now: float) -> None:
        self.failures += 1
        self.probing = False
        self.open_until = now + min(self.max_cooldown, self.cooldown * 2 ** (self.failures - 1))

    @property
    def is_open(self) -> bool:
        return self.failures > 0
