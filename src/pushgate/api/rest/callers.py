"""Who is calling the REST API: a server with an access key, or an app on behalf of its
user with the user's OpenID Connect token (``Authorization: Bearer <jwt>``).

An access key may act on any user; an identity token only on the user it names (its
configured claim, ``sub`` by default). Tokens are verified by :mod:`pushgate.oidc` against
the issuer's published keys; a bad, expired or foreign token is a 401 problem and nothing
changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import Request

from pushgate.api.rest.auth import require_access_key
from pushgate.api.rest.problems import Problem
from pushgate.oidc import IdentityTokenError, IssuerUnavailable, OidcConfig, OidcVerifier

_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pushgate"'}


@dataclass(frozen=True)
class Caller:
    """``user`` is set for an app acting with its user's identity token; ``access_key``
    for a server."""

    access_key: str | None = None
    user: str | None = None


async def authenticate(request: Request) -> Caller:
    """A server (access key) or a user (identity token, the global OIDC settings)."""
    token = _bearer(request)
    if token is None:
        return Caller(access_key=await require_access_key(request))
    config: OidcConfig | None = request.app.state.oidc_config
    return Caller(user=await _verify(request, token, config))


async def server_unless_bearer(request: Request) -> Caller | None:
    """A server's access key, checked before anything else; None for an identity token,
    which is verified once the body names the application (:func:`authenticate_user`)."""
    if _bearer(request) is not None:
        return None
    return Caller(access_key=await require_access_key(request))


async def authenticate_user(request: Request, config: OidcConfig | None) -> Caller:
    """The user of the request's identity token, verified with ``config``."""
    token = _bearer(request)
    assert token is not None
    return Caller(user=await _verify(request, token, config))


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


async def _verify(request: Request, token: str, config: OidcConfig | None) -> str:
    if config is None:
        raise Problem(
            401,
            "Unauthorized",
            "identity tokens are not accepted: no OpenID Connect issuer is configured",
            _BEARER_CHALLENGE,
        )
    verifier: OidcVerifier = request.app.state.oidc_verifier
    try:
        return await verifier.verify(token, config)
    except IssuerUnavailable as exc:
        # Not a 401: apps log their user out on a 401, and the token may well be fine.
        raise Problem(
            503,
            "Service Unavailable",
            "the identity provider cannot be reached; try again later",
            {"Retry-After": str(math.ceil(exc.retry_after))},
        ) from None
    except IdentityTokenError as exc:
        challenge = {"WWW-Authenticate": 'Bearer realm="pushgate", error="invalid_token"'}
        raise Problem(
            401, "Unauthorized", f"invalid identity token: {exc.reason}", challenge
        ) from None
