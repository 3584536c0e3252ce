"""The fakes' OAuth 2.0 token endpoints (specs/providers.md sec. 3.1, 4.1, 7.1).

ADM (Login with Amazon), HMS and WNS grant access tokens for client credentials (RFC
6749 sec. 4.4). :class:`ClientCredentialsIssuer` knows the clients and the tokens issued
to them, and :func:`answer_grant` answers and records a request once the provider's
checks ran. The checks stay each provider's, as their order, statuses and wording differ;
:func:`check_grant` is the order that ADM and HMS share.

What every fake token endpoint shares, FCM's JWT-bearer one
(:mod:`~pushgate.fakes.fcm_oauth`) too: the :class:`TokenRequest` record,
:class:`OAuthError`, :func:`parse_form` and, for the send endpoints, :func:`bearer`.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pushgate.fakes.h2server import Request, Response

__all__ = [
    "GRANT_TYPE",
    "ClientCredentialsIssuer",
    "Form",
    "Grant",
    "OAuthError",
    "TokenRequest",
    "answer_grant",
    "bearer",
    "check_grant",
    "form_value",
    "parse_form",
]

Form = dict[str, list[str]]
GRANT_TYPE = "client_credentials"


@dataclass(frozen=True)
class Grant:
    """An access token the issuer handed out."""

    value: str
    client_id: str
    expires_at: float


@dataclass(frozen=True, kw_only=True)
class TokenRequest:
    """One request to a token endpoint and its outcome (``error`` None: granted)."""

    status: int
    error: str | None
    client_id: str | None  # as sent; for the JWT-bearer grant, the assertion's ``iss``
    scope: str | None
    access_token: str | None
    expires_in: int | None
    connection_id: int
    received_at: float
    error_description: str | None = None
    audience: str | None = None  # the JWT-bearer assertion's ``aud``

    @property
    def outcome(self) -> str:
        """``"ok"``, or the OAuth error code."""
        return self.error or "ok"


@dataclass(frozen=True)
class OAuthError:
    """A refused token request: the HTTP status and the RFC 6749 sec. 5.2 error."""

    status: int
    error: str
    description: str

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class ClientCredentialsIssuer:
    """Known OAuth clients (id → secret) and the access tokens issued to them.

    Thread-safe. A disabled client's grants fail and its tokens stop working.
    """

    def __init__(self, token_prefix: str) -> None:
        self.token_prefix = token_prefix
        self._lock = threading.Lock()
        self._clients: dict[str, str] = {}
        self._disabled: set[str] = set()
        self._tokens: dict[str, Grant] = {}

    def register(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._clients[client_id] = client_secret
            self._disabled.discard(client_id)

    def disable(self, client_id: str) -> None:
        with self._lock:
            self._disabled.add(client_id)

    def authenticate(self, client_id: str, client_secret: str) -> bool:
        """Whether the pair names an enabled client (compared in constant time)."""
        with self._lock:
            known = self._clients.get(client_id)
            disabled = client_id in self._disabled
        if known is None or disabled:
            return False
        return secrets.compare_digest(known.encode(), client_secret.encode())

    def issue(self, client_id: str, now: float, lifetime: int) -> Grant:
        grant = Grant(self.token_prefix + secrets.token_urlsafe(32), client_id, now + lifetime)
        with self._lock:
            self._tokens[grant.value] = grant
        return grant

    def lookup(self, value: str) -> Grant | None:
        """The grant of token ``value`` of an enabled client, expired or not; None when
        unknown."""
        with self._lock:
            grant = self._tokens.get(value)
            if grant is None or grant.client_id in self._disabled:
                return None
            return grant

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on (they stay known)."""
        with self._lock:
            self._tokens = {
                value: Grant(value, grant.client_id, 0.0) for value, grant in self._tokens.items()
            }

    def clear_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case)."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def parse_form(request: Request) -> Form | None:
    """The fields of a form-encoded body, blank values kept; None for another type."""
    if request.media_type != "application/x-www-form-urlencoded":
        return None
    return urllib.parse.parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)


def form_value(form: Form | None, name: str) -> str | None:
    """The first value of field ``name`` (``""`` when sent blank), or None."""
    values = (form or {}).get(name)
    return values[0] if values else None


def check_grant(
    request: Request,
    form: Form | None,
    issuer: ClientCredentialsIssuer,
    *,
    scope: str | None = None,
    fields: Collection[str] | None = None,
) -> OAuthError | None:
    """ADM's and HMS's checks of a grant request, first failure wins: POST (``405``), a
    form, only ``fields`` and each once (when given), ``grant_type``, ``scope`` exactly
    (when given), both credentials, then the client (``401 invalid_client``)."""
    if request.method != "POST":
        return OAuthError(405, "invalid_request", "The request method must be POST")
    if form is None:
        return OAuthError(400, "invalid_request", "Content-Type must be form-encoded")
    if fields is not None and (
        set(form) - set(fields) or any(len(values) > 1 for values in form.values())
    ):
        return OAuthError(400, "invalid_request", "Unknown or repeated parameter")
    grant_type = form_value(form, "grant_type")
    if grant_type is None:
        return OAuthError(400, "invalid_request", "Missing parameter: grant_type")
    if grant_type != GRANT_TYPE:
        return OAuthError(400, "unsupported_grant_type", "Unsupported grant_type")
    if scope is not None and form_value(form, "scope") != scope:
        return OAuthError(400, "invalid_scope", "An unknown scope was specified")
    client_id, client_secret = form_value(form, "client_id"), form_value(form, "client_secret")
    if not client_id or not client_secret:
        return OAuthError(400, "invalid_request", "Missing client_id or client_secret")
    if not issuer.authenticate(client_id, client_secret):
        return OAuthError(401, "invalid_client", "Client authentication failed")
    return None


def answer_grant(
    request: Request,
    form: Form | None,
    refusal: OAuthError | None,
    issuer: ClientCredentialsIssuer,
    *,
    now: float,
    lifetime: int,
    headers: list[tuple[str, str]],
    granted: Mapping[str, str],
) -> tuple[TokenRequest, Response]:
    """The record and the answer of a grant request: ``refusal``'s error, else a new token
    of ``lifetime`` seconds for the form's client, with the provider's ``granted`` fields
    (``token_type``, ``scope``) after ``access_token`` and ``expires_in``."""
    client_id, scope = form_value(form, "client_id"), form_value(form, "scope")
    if refusal is not None:
        record = TokenRequest(
            status=refusal.status,
            error=refusal.error,
            client_id=client_id,
            scope=scope,
            access_token=None,
            expires_in=None,
            connection_id=request.connection.id,
            received_at=now,
            error_description=refusal.description,
        )
        return record, Response(refusal.status, headers, json.dumps(refusal.body()).encode())
    assert client_id is not None, "a grant names its client"
    grant = issuer.issue(client_id, now, lifetime)
    record = TokenRequest(
        status=200,
        error=None,
        client_id=client_id,
        scope=scope,
        access_token=grant.value,
        expires_in=lifetime,
        connection_id=request.connection.id,
        received_at=now,
    )
    answer = {"access_token": grant.value, "expires_in": lifetime, **granted}
    return record, Response(200, headers, json.dumps(answer).encode())
