"""SigV4 for the SNS API: the secret of an access key, cached, and the request check."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pushgate.api.sns.sigv4 import SignedRequest, verify_request
from pushgate.domain import access_keys
from pushgate.domain.runtime import Runtime

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class SecretCache:
    """Access-key secrets, decrypted once and kept for ``ttl`` seconds.

    A key deleted with ``pushgate keys delete`` stops working within ``ttl``; an unknown
    key is remembered for ``negative_ttl`` so that a client with a wrong key id does not
    cost a query per request.
    """

    def __init__(
        self,
        rt: Runtime,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = rt
        self._ttl, self._negative_ttl = ttl, negative_ttl
        self._clock = clock
        self._entries: dict[str, tuple[str | None, float]] = {}

    async def get(self, access_key_id: str) -> str | None:
        now = self._clock()
        cached = self._entries.get(access_key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        secret = await access_keys.secret_for(self._rt, access_key_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        expires = now + (self._ttl if secret is not None else self._negative_ttl)
        self._entries[access_key_id] = (secret, expires)
        return secret


async def authenticate(
    cache: SecretCache,
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
) -> SignedRequest:
    """Verify the request's SigV4 signature; raise an ``AuthError`` subclass if it fails."""
    match = _CREDENTIAL.search(headers.get("authorization", "")) or _CREDENTIAL.search(
        query_string.replace("%2F", "/")
    )
    secret = await cache.get(match[1]) if match else None
    return verify_request(
        method=method,
        raw_path=raw_path,
        query_string=query_string,
        headers=headers,
        body=body,
        lookup_secret=lambda key_id: secret if match and key_id == match[1] else None,
        now=datetime.now(UTC),
    )
