"""Sending with an OAuth access token, and the one refresh a refused token gets.

ADM, FCM, HMS and WNS authorise every send with ``Authorization: Bearer <token>`` from an
:class:`~pushgate.providers.oauth.AccessTokenCache` (specs/providers.md 2.2, 3.1, 4.1,
7.1). They share one rule: the sends a provider refuses as ``REFRESH_AUTH`` get a new
token (the refused one passed as ``stale``, so that the cache does not hand it back) and
one more try; a second refusal is the application's configuration, ``CONFIG_ERROR``.
When the token endpoint fails, every send that needed the token gets its result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pushgate.providers.oauth import AccessTokenCache, Credential
from pushgate.providers.outcomes import Outcome, SendResult, credential_refused
from pushgate.providers.transport import Http2Transport, Request, Response

C = TypeVar("C", bound=Credential)
S = TypeVar("S")  # what a client knows of one send: its body, its device token ...


class BearerSender(Generic[C]):
    """Sends for one credential through ``transport``, with the token of ``tokens``.

    ``provider`` names the token's log actions (``adm_token_obtained`` ...).
    """

    def __init__(
        self,
        tokens: AccessTokenCache[C],
        credential: C,
        transport: Http2Transport,
        provider: str,
    ) -> None:
        self.tokens = tokens
        self.credential = credential
        self.transport = transport
        self.provider = provider

    async def send(
        self,
        sends: Sequence[S],
        requests: Callable[[str, list[S]], list[Request]],
        classify: Callable[[Response, S], SendResult],
    ) -> list[SendResult]:
        """The results of ``sends``, in order. ``requests(access_token, sends)`` makes
        their requests; ``classify(response, send)`` judges an answer. Nothing to send
        asks for no token."""
        results: list[SendResult | None] = [None] * len(sends)
        stale: str | None = None
        pending = list(range(len(sends)))
        for attempt in range(2 if sends else 0):
            access = await self.tokens.get(
                self.credential, self.transport, stale=stale, provider=self.provider
            )
            if isinstance(access, SendResult):
                for position in pending:
                    results[position] = access
                break
            batch = [sends[position] for position in pending]
            responses = await self.transport.request_many(requests(access, batch))
            refused: list[int] = []
            for position, send, response in zip(pending, batch, responses, strict=True):
                result = classify(response, send)
                if result.outcome is Outcome.REFRESH_AUTH:
                    refused.append(position)
                    if attempt:
                        result = credential_refused(result)
                results[position] = result
            if not refused:
                break
            stale, pending = access, refused
        return results  # type: ignore[return-value]
