"""The fake Google OAuth 2.0 token endpoint: service accounts and the JWT-bearer grant.

specs/providers.md sec. 2.2 and 10.2. The checks run in this order, first failure wins:
form encoding and parameters (``invalid_request``, ``unsupported_grant_type``), the
assertion's header, issuer, key id and RS256 signature (``invalid_grant``), audience,
scope (``invalid_scope``), ``iat``/``exp`` window (``invalid_grant``), then a disabled
account (``401 invalid_client``). The record, the errors and the form are those of every
fake token endpoint (:mod:`pushgate.fakes.client_credentials`).
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgate.fakes import jose
from pushgate.fakes.client_credentials import Form, OAuthError, TokenRequest, form_value

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
MAX_ASSERTION_LIFETIME = 3600
_BAD_WINDOW = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key_id: str
    project_id: str
    public_key: rsa.RSAPublicKey


@dataclass(frozen=True)
class AccessToken:
    value: str
    client_email: str
    project_id: str
    expires_at: float


class TokenIssuer:
    """Known service accounts and the access tokens issued to them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, ServiceAccount] = {}
        self._disabled: set[str] = set()
        self._tokens: dict[str, AccessToken] = {}

    def create_service_account(
        self, project_id: str, token_uri: str, client_email: str | None = None
    ) -> dict[str, str]:
        """A new service-account JSON (as a dict), registered here."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        email = client_email or (
            f"firebase-adminsdk-{secrets.token_hex(3)[:5]}@{project_id}.iam.gserviceaccount.com"
        )
        info = {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)).zfill(21),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + urllib.parse.quote(email),
            "universe_domain": "googleapis.com",
        }
        self._add(ServiceAccount(email, info["private_key_id"], project_id, key.public_key()))
        return info

    def register(self, info: Mapping[str, str]) -> ServiceAccount:
        """Register an existing service-account JSON (its private key gives the public one)."""
        private_key = serialization.load_pem_private_key(info["private_key"].encode(), None)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError("a service account key is an RSA key")
        account = ServiceAccount(
            info["client_email"],
            info["private_key_id"],
            info["project_id"],
            private_key.public_key(),
        )
        self._add(account)
        return account

    def _add(self, account: ServiceAccount) -> None:
        with self._lock:
            self._accounts[account.client_email] = account
            self._disabled.discard(account.client_email)

    def disable(self, client_email: str) -> None:
        """The account's grants fail with ``401 invalid_client``; its tokens stop working."""
        with self._lock:
            self._disabled.add(client_email)

    def lookup(self, value: str, now: float) -> AccessToken | None:
        """The live access token ``value`` of an enabled account, or None."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.expires_at <= now or token.client_email in self._disabled:
                return None
            return token

    def exchange(
        self,
        form: Form | None,
        *,
        audiences: Collection[str],
        now: float,
        lifetime: int,
        skew: float,
        connection_id: int,
    ) -> tuple[TokenRequest, bytes]:
        """Answer one token request (its form, None if not form-encoded): its record and
        the JSON body to send."""
        claims: dict[str, object] = {}
        outcome = self._grant(form, claims, audiences, now, skew)

        def claim(name: str) -> str | None:
            value = claims.get(name)
            return value if isinstance(value, str) else None

        if isinstance(outcome, OAuthError):
            record = TokenRequest(
                status=outcome.status,
                error=outcome.error,
                client_id=claim("iss"),
                scope=claim("scope"),
                access_token=None,
                expires_in=None,
                connection_id=connection_id,
                received_at=now,
                error_description=outcome.description,
                audience=claim("aud"),
            )
            return record, json.dumps(outcome.body(), indent=2).encode()
        token = replace(outcome, expires_at=now + lifetime)
        with self._lock:
            self._tokens[token.value] = token
        record = TokenRequest(
            status=200,
            error=None,
            client_id=token.client_email,
            scope=claim("scope"),
            access_token=token.value,
            expires_in=lifetime,
            connection_id=connection_id,
            received_at=now,
            audience=claim("aud"),
        )
        granted = {"access_token": token.value, "expires_in": lifetime, "token_type": "Bearer"}
        return record, json.dumps(granted, indent=2).encode()

    def _grant(
        self,
        form: Form | None,
        claims_out: dict[str, object],
        audiences: Collection[str],
        now: float,
        skew: float,
    ) -> AccessToken | OAuthError:
        if form is None:
            return OAuthError(400, "invalid_request", "Content-Type must be form-encoded.")
        grant_type = form_value(form, "grant_type")
        if not grant_type:
            return OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant_type != GRANT_TYPE:
            return OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = form_value(form, "assertion")
        if not assertion:
            return OAuthError(400, "invalid_request", "Missing required parameter: assertion")
        try:
            jws = jose.parse(assertion)
        except jose.JwsError:
            return OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        claims_out.update(jws.claims)
        return self._check_assertion(jws, audiences, now, skew)

    def _check_assertion(
        self, jws: jose.Jws, audiences: Collection[str], now: float, skew: float
    ) -> AccessToken | OAuthError:
        claims = jws.claims
        with self._lock:
            account = self._accounts.get(str(claims.get("iss")))
            disabled = account is not None and account.client_email in self._disabled
        if account is None:
            return OAuthError(400, "invalid_grant", "Invalid grant: account not found")
        kid = jws.header.get("kid")
        if (
            jws.header.get("alg") != "RS256"
            or (kid is not None and kid != account.private_key_id)
            or not jose.verify_rs256(jws, account.public_key)
        ):
            return OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") not in audiences:
            return OAuthError(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        scope = claims.get("scope")
        if not isinstance(scope, str) or not SCOPES & set(scope.split()):
            return OAuthError(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        iat, exp = claims.get("iat"), claims.get("exp")
        if not (jose.is_int(iat) and jose.is_int(exp)):
            return OAuthError(400, "invalid_grant", _BAD_WINDOW)
        assert isinstance(iat, int) and isinstance(exp, int)
        if iat > now + skew or exp <= now or exp - iat > MAX_ASSERTION_LIFETIME:
            return OAuthError(400, "invalid_grant", _BAD_WINDOW)
        if disabled:
            return OAuthError(401, "invalid_client", "The OAuth client was disabled.")
        value = "ya29.fake-" + secrets.token_urlsafe(32)
        return AccessToken(value, account.client_email, account.project_id, 0.0)

    def clear_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()
