"""OAuth 2.0 access tokens, cached per credential for a whole process.

ADM (Login with Amazon), WNS and HMS trade a client id and secret for a bearer token
(client credentials, RFC 6749 sec. 4.4; specs/providers.md 3.1, 4.1, 7.1), FCM a signed
JWT (the JWT-bearer grant of RFC 7523, sec. 2.2, :class:`pushgate.providers.fcm.FcmTokenCache`);
every token endpoint answers ``{"access_token": ..., "expires_in": ...}``.

:class:`AccessTokenCache` keeps one token per credential until shortly before it expires;
concurrent callers that find none share one request. A subclass says how a credential
asks for its token (:meth:`AccessTokenCache.token_request`); :class:`ClientCredentialsCache`
is the client-credentials one. A refusal (4xx) is the application's configuration,
reported as a :class:`SendResult` with ``CONFIG_ERROR`` for every message that needed the
token; no answer, 429 or 5xx is worth retrying later.

Secrets are never logged and never part of a cache key's text in a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from pushgate.providers.outcomes import Outcome, SendResult, classified, json_object, no_response
from pushgate.providers.transport import Http2Transport, Request, Response

log = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0  # seconds before expiry at which a token is replaced


class Credential(Protocol):
    """What a cache needs of any credential: the key it keeps the token under."""

    @property
    def key(self) -> Hashable: ...


C = TypeVar("C", bound=Credential)


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


def classify_token_error(response: Response) -> SendResult:
    """A failed token request, with its OAuth ``error`` as reason. A refusal (4xx) is the
    application's configuration; no answer, 429 or a 5xx is worth retrying."""
    status = response.status
    if status == 0:
        return no_response(response.error, response.elapsed * 1000)
    error = json_object(response.body).get("error")
    reason = error if isinstance(error, str) else ""
    if status >= 500 or status == 429:
        return classified(response, Outcome.RETRY_BACKOFF, reason)
    return classified(response, Outcome.CONFIG_ERROR, reason or "invalid_token_response")


def _granted(response: Response) -> tuple[str, int | float] | None:
    """The ``access_token`` and ``expires_in`` of a token response; None for anything
    but a 200 with a non-empty token and a positive lifetime."""
    data = json_object(response.body) if response.status == 200 else {}
    value, expires_in = data.get("access_token"), data.get("expires_in")
    if (
        not isinstance(value, str)
        or not value
        or not isinstance(expires_in, int | float)
        or isinstance(expires_in, bool)
        or expires_in <= 0
    ):
        return None
    return value, expires_in


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: float


class AccessTokenCache(ABC, Generic[C]):
    """Access tokens per credential ``C``, for every client of a process.

    A fetch is one task per credential and event loop; callers that arrive meanwhile
    await the same task. ``clock`` is injectable for tests. ``provider`` (by default
    :attr:`PROVIDER`) names the log actions and the fetch task.
    """

    PROVIDER = "oauth"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[Hashable, _Token] = {}
        self._inflight: dict[Hashable, asyncio.Task[str | SendResult]] = {}

    @abstractmethod
    def token_request(self, credential: C, now: float, provider: str) -> Request:
        """The request that trades ``credential`` for an access token at ``now``."""

    @abstractmethod
    def log_fields(self, credential: C) -> dict[str, str]:
        """Who asked, for log lines: never a secret."""

    def cached(self, credential: C) -> str | None:
        """A token still fresh enough to use, or None."""
        token = self._tokens.get(credential.key)
        if token is not None and self.clock() < token.refresh_at:
            return token.value
        return None

    async def get(
        self,
        credential: C,
        transport: Http2Transport,
        *,
        stale: str | None = None,
        provider: str | None = None,
    ) -> str | SendResult:
        """An access token, fetched when there is none fresh (or only ``stale``, which the
        provider refused); a :class:`SendResult` when the token endpoint fails."""
        key = credential.key
        token = self._tokens.get(key)
        if token is not None and token.value != stale and self.clock() < token.refresh_at:
            return token.value
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not loop:
            name = provider or self.PROVIDER
            task = loop.create_task(
                self._fetch(credential, transport, name), name=f"{name}-access-token"
            )
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def clear(self) -> None:
        self._tokens.clear()

    def _forget(self, key: Hashable, task: asyncio.Task[str | SendResult]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self, credential: C, transport: Http2Transport, provider: str
    ) -> str | SendResult:
        now = self.clock()
        response = await transport.request(self.token_request(credential, now, provider))
        granted = _granted(response)
        if granted is None:
            failure = classify_token_error(response)  # a 200 without a token: CONFIG_ERROR
            log.warning(
                "%s access token refused",
                provider,
                extra={
                    "action": f"{provider}_token_failed",
                    **self.log_fields(credential),
                    "status": failure.status,
                    "reason": failure.reason or failure.response[:200],
                },
            )
            return failure
        value, expires_in = granted
        self._tokens[credential.key] = _Token(value, refresh_at(now, float(expires_in)))
        log.info(
            "%s access token obtained",
            provider,
            extra={
                "action": f"{provider}_token_obtained",
                **self.log_fields(credential),
                "expires_in": expires_in,
            },
        )
        return value


class ClientCredentialsCache(AccessTokenCache[ClientCredentials]):
    """Client-credentials tokens (ADM, HMS, WNS). Token requests go through the
    transport's ``<provider>-token`` connection partition."""

    def token_request(self, credential: ClientCredentials, now: float, provider: str) -> Request:
        return Request(
            "POST",
            credential.token_url,
            (
                "content-type: application/x-www-form-urlencoded;charset=UTF-8",
                "accept: application/json",
            ),
            credential.form(),
            pool=f"{provider}-token",
        )

    def log_fields(self, credential: ClientCredentials) -> dict[str, str]:
        return {"client_id": credential.client_id}


SHARED_CACHE = ClientCredentialsCache()
"""The process's client-credentials tokens."""
