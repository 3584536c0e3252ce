"""The normalised outcome of one send (specs/providers.md sec. 0.1), and the pieces every
provider's ``classify`` shares to get there.

A provider's own table (APNs reasons, FCM error codes, WNS statuses ...) says which
:class:`Outcome` an answer is; :func:`classified` then makes the :class:`SendResult`,
applying the one ``Retry-After`` rule of sec. 0.2. :func:`by_status_class` judges an
answer that no table names. :func:`unsendable` is a result decided without a request,
:func:`credential_refused` the end of a credential the provider would not take.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pushgate.providers.transport import Response

# The reason of a send that got no HTTP answer (connection refused, TLS failure, reset);
# the transport's error text is the result's ``response``.
NO_RESPONSE = "NoResponse"
RESPONSE_TEXT_LIMIT = 1024  # bytes of a response body a result keeps


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


def unsendable(reason: str, text: str, outcome: Outcome = Outcome.FAIL_PERMANENT) -> SendResult:
    """A result decided without asking the provider (a payload too large, a token that
    cannot be one): no request is made."""
    return SendResult(outcome, reason=reason, response=text)


def response_text(body: bytes) -> str:
    """A response body as bounded text, for delivery logs."""
    return body[:RESPONSE_TEXT_LIMIT].decode("utf-8", "replace")


def diagnostics(response: Response, header_names: Sequence[str]) -> str:
    """What a result keeps of an answer whose headers say more than its body (WNS,
    MPNS): the ``header_names`` present as ``name: value`` lines, most telling first,
    then the body; bounded."""
    headers = response.headers
    lines = [f"{name}: {headers[name]}" for name in header_names if name in headers]
    if response.body:
        lines.append(response_text(response.body))
    return response_text("\n".join(lines).encode())


def json_object(body: bytes | str) -> dict[str, Any]:
    """The body as a JSON object; empty when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def by_status_class(status: int) -> Outcome:
    """An answer that no provider table names: a client error (4xx but 429) is the
    message's fault, ``FAIL_PERMANENT``; anything else (5xx, 429, a status nobody
    expects) ``RETRY_BACKOFF``."""
    if 400 <= status < 500 and status != 429:
        return Outcome.FAIL_PERMANENT
    return Outcome.RETRY_BACKOFF


def classified(
    response: Response,
    outcome: Outcome,
    reason: str = "",
    text: str | None = None,
    *,
    default_wait: float | None = None,
) -> SendResult:
    """The result of an HTTP answer that a provider's table made ``outcome``.

    ``text`` is what the result keeps of the answer (by default its bounded body). The
    ``Retry-After`` rule of sec. 0.2: a transient outcome with a hint is ``RETRY_AFTER``
    that long, without one ``RETRY_BACKOFF``, unless the provider's documentation sets a
    wait for a throttling answer (``default_wait`` for a ``RETRY_AFTER`` without a
    header). Any other outcome carries no wait.
    """
    retry_after = response.retry_after
    if outcome is Outcome.RETRY_AFTER or outcome is Outcome.RETRY_BACKOFF:
        if retry_after is None and outcome is Outcome.RETRY_AFTER:
            retry_after = default_wait
        outcome = Outcome.RETRY_BACKOFF if retry_after is None else Outcome.RETRY_AFTER
    else:
        retry_after = None
    return SendResult(
        outcome,
        status=response.status,
        reason=reason,
        response=response_text(response.body) if text is None else text,
        retry_after=retry_after,
        latency_ms=response.elapsed * 1000,
    )


def credential_refused(result: SendResult) -> SendResult:
    """``result``, a ``REFRESH_AUTH``, when there is no fresh credential to retry with or
    the provider refused that too: the application's configuration, ``CONFIG_ERROR``
    (``REFRESH_AUTH`` never leaves a client)."""
    return SendResult(
        Outcome.CONFIG_ERROR,
        status=result.status,
        reason=result.reason,
        response=result.response,
        latency_ms=result.latency_ms,
    )
