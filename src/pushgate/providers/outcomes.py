"""The normalised outcome of one send (specs/providers.md sec. 0.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The reason of a send that got no HTTP answer (connection refused, TLS failure, reset);
# the transport's error text is the result's ``response``.
NO_RESPONSE = "NoResponse"


class Outcome(StrEnum):
    """What the delivery engine does next; every provider answer maps to exactly one.

    ``REFRESH_AUTH`` never leaves a client: it refreshes its credential and retries once,
    and reports ``CONFIG_ERROR`` if the provider still refuses.
    """

    SUCCESS = "SUCCESS"
    DISABLE_ENDPOINT = "DISABLE_ENDPOINT"
    UPDATE_TOKEN = "UPDATE_TOKEN"
    RETRY_BACKOFF = "RETRY_BACKOFF"
    RETRY_AFTER = "RETRY_AFTER"
    REFRESH_AUTH = "REFRESH_AUTH"
    FAIL_PERMANENT = "FAIL_PERMANENT"
    CONFIG_ERROR = "CONFIG_ERROR"


# Not frozen: one is made per delivery, and a frozen dataclass's __init__ costs several
# times as much (object.__setattr__ per field).
@dataclass(slots=True)
class SendResult:
    """The outcome of one notification to one device token.

    ``status`` is the provider's HTTP status (0 when no response arrived); ``reason`` its
    short error name (APNs ``reason``, FCM ``errorCode`` or ``status``), empty on success;
    ``response`` the raw response body as text (bounded), for delivery logs.
    """

    outcome: Outcome
    status: int = 0
    reason: str = ""
    response: str = ""
    retry_after: float | None = None
    new_token: str | None = None
    # APNs 410 Unregistered: when the provider last saw the token valid (epoch ms).
    invalid_since_ms: int | None = None
    latency_ms: float = 0.0


def no_response(error: str | None, latency_ms: float) -> SendResult:
    """The result of a send that got no HTTP answer: retried on a fresh connection, since
    the provider most likely never saw it (specs/providers.md sec. 0.2)."""
    return SendResult(
        Outcome.RETRY_BACKOFF,
        reason=NO_RESPONSE,
        response=error or "no response",
        latency_ms=latency_ms,
    )
