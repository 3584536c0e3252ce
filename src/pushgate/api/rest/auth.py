"""Authentication of the REST API: the same access keys as the SNS API.

A caller either signs with SigV4 (any AWS SDK's signer, service ``sns``) or sends the key
id and secret as HTTP Basic credentials (``curl -u KEY_ID:SECRET``); over anything but
loopback, put TLS in front.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import Request

from pushgate.api.rest.problems import Problem
from pushgate.api.sns.auth import SecretCache, authenticate
from pushgate.domain.errors import AuthError

_UNAUTHORIZED = {"WWW-Authenticate": 'Basic realm="pushgate"'}


async def require_access_key(request: Request) -> str:
    """The access key id of an authenticated request; a 401 problem otherwise."""
    cache: SecretCache = request.app.state.secret_cache
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            key_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Problem(
                401, "Unauthorized", "Malformed Basic credentials", _UNAUTHORIZED
            ) from None
        known = await cache.get(key_id)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            raise Problem(401, "Unauthorized", "Unknown access key or wrong secret", _UNAUTHORIZED)
        return key_id
    if scheme == "AWS4-HMAC-SHA256":
        try:
            signed = await authenticate(
                cache,
                method=request.method,
                raw_path=request.scope.get("raw_path", b"").decode() or request.url.path,
                query_string=request.url.query,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=await request.body(),
            )
        except AuthError as exc:
            raise Problem(401, "Unauthorized", exc.message, _UNAUTHORIZED) from None
        return signed.access_key_id
    raise Problem(401, "Unauthorized", "Send an access key (SigV4 or HTTP Basic)", _UNAUTHORIZED)
