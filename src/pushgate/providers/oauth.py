"""OAuth 2.0 client-credentials access tokens, cached per credential for a whole process.

ADM (Login with Amazon), WNS and HMS all trade a client id and secret for a bearer token
at a token endpoint (RFC 6749 sec. 4.4; specs/providers.md 3.1, 4.1, 7.1) and answer with
``{"access_token": ..., "expires_in": ...}``. :class:`ClientCredentialsCache` keeps one
token per (token URL, client id, scope) until shortly before it expires; concurrent
callers that find none share one request. A refusal (4xx) is the application's
configuration, reported as a :class:`SendResult` with ``CONFIG_ERROR`` for every message
that needed the token; no answer, 429 or 5xx is worth retrying later.

The secret is never logged and never part of a cache key's text in a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pushgate.providers.outcomes import Outcome, SendResult, no_response
from pushgate.providers.transport import Http2Transport, Request, Response

log = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0  # seconds before expiry at which a token is replaced
RESPONSE_TEXT_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """One OAuth client at one token endpoint. ``extra`` are further form fields."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.token_url, self.client_id, self.scope)

    def form(self) -> bytes:
        fields = [("grant_type", "client_credentials")]
        if self.scope is not None:
            fields.append(("scope", self.scope))
        fields += [("client_id", self.client_id), ("client_secret", self.client_secret)]
        fields += list(self.extra)
        return urllib.parse.urlencode(fields).encode()


def refresh_at(now: float, expires_in: float) -> float:
    """When to replace a token issued ``now``: 5 minutes before it expires, or half-way
    through a lifetime shorter than 10 minutes."""
    if expires_in > 2 * REFRESH_MARGIN:
        return now + expires_in - REFRESH_MARGIN
    return now + expires_in / 2


def response_text(body: bytes) -> str:
    """A response body as bounded text, for delivery logs."""
    return body[:RESPONSE_TEXT_LIMIT].decode("utf-8", "replace")


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; empty when it is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def classify_token_error(response: Response) -> SendResult:
    """A failed token request, with its OAuth ``error`` as reason. A refusal (4xx) is the
    application's configuration; no answer, 429 or a 5xx is worth retrying."""
    status = response.status
    latency_ms = response.elapsed * 1000
    if status == 0:
        return no_response(response.error, latency_ms)
    error = json_object(response.body).get("error")
    reason = error if isinstance(error, str) else ""
    if status >= 500 or status == 429:
        outcome = Outcome.RETRY_BACKOFF if response.retry_after is None else Outcome.RETRY_AFTER
        return SendResult(
            outcome,
            status=status,
            reason=reason,
            response=response_text(response.body),
            retry_after=response.retry_after,
            latency_ms=latency_ms,
        )
    return SendResult(
        Outcome.CONFIG_ERROR,
        status=status,
        reason=reason or "invalid_token_response",
        response=response_text(response.body),
        latency_ms=latency_ms,
    )


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: float


class ClientCredentialsCache:
    """Access tokens per :class:`ClientCredentials`, for every client of a process.

    ``clock`` is injectable for tests. ``pool`` names the transport's connection partition
    for token requests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[tuple[str, str, str | None], _Token] = {}
        self._inflight: dict[tuple[str, str, str | None], asyncio.Task[str | SendResult]] = {}

    async def get(
        self,
        credentials: ClientCredentials,
        transport: Http2Transport,
        *,
        stale: str | None = None,
        provider: str = "oauth",
    ) -> str | SendResult:
        """An access token, fetched when there is none fresh (or only ``stale``, which the
        provider refused); a :class:`SendResult` when the token endpoint fails."""
        key = credentials.key
        token = self._tokens.get(key)
        if token is not None and token.value != stale and self.clock() < token.refresh_at:
            return token.value
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(
                self._fetch(credentials, transport, provider), name=f"{provider}-access-token"
            )
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def clear(self) -> None:
        self._tokens.clear()

    def _forget(
        self, key: tuple[str, str, str | None], task: asyncio.Task[str | SendResult]
    ) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self, credentials: ClientCredentials, transport: Http2Transport, provider: str
    ) -> str | SendResult:
        now = self.clock()
        request = Request(
            "POST",
            credentials.token_url,
            (
                "content-type: application/x-www-form-urlencoded;charset=UTF-8",
                "accept: application/json",
            ),
            credentials.form(),
            pool=f"{provider}-token",
        )
        response = await transport.request(request)
        data = json_object(response.body) if response.status == 200 else {}
        value, expires_in = data.get("access_token"), data.get("expires_in")
        if (
            response.status != 200
            or not isinstance(value, str)
            or not value
            or not isinstance(expires_in, int | float)
            or isinstance(expires_in, bool)
            or expires_in <= 0
        ):
            failure = classify_token_error(response)  # a 200 without a token: CONFIG_ERROR
            log.warning(
                "%s access token refused",
                provider,
                extra={
                    "action": f"{provider}_token_failed",
                    "client_id": credentials.client_id,
                    "status": failure.status,
                    "reason": failure.reason or failure.response[:200],
                },
            )
            return failure
        self._tokens[credentials.key] = _Token(value, refresh_at(now, float(expires_in)))
        log.info(
            "%s access token obtained",
            provider,
            extra={
                "action": f"{provider}_token_obtained",
                "client_id": credentials.client_id,
                "expires_in": expires_in,
            },
        )
        return value


SHARED_CACHE = ClientCredentialsCache()
"""The process's client-credentials tokens."""
