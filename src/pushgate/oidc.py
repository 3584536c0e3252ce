"""Verification of the identity tokens apps present on registration (OpenID Connect).

An app registers a device with its user's own token (``Authorization: Bearer <jwt>``): an
OIDC ID token or a JWT access token (RFC 9068). :meth:`OidcVerifier.verify` accepts it
only when it is a compact JWS signed with an asymmetric algorithm of the configured list
by a key from the issuer's JWKS, with ``iss`` equal to the configured issuer, an ``aud``
naming a configured audience, an ``exp`` in the future and no ``nbf``/``iat`` in the
future (each with ``leeway`` seconds of clock skew); it answers the user id, the
configured claim (default ``sub``): a non-empty printable string of at most 256
characters. Otherwise it raises :class:`IdentityTokenError` with a :class:`Refusal`: a
short fixed text, never the token, which the API turns into a 401 problem. When the
issuer cannot be reached and no usable keys are cached it raises
:class:`IssuerUnavailable` instead (a 503: the token may be fine, and apps that see a 401
tend to log their user out).

Division of labour with PyJWT: PyJWT takes the token apart (strict base64url and JSON,
once: its parse is most of the CPU a verification costs) and checks the signature, with
the algorithm object and prepared key of a :class:`jwt.PyJWK` bound to the token's
algorithm (the three calls its ``PyJWS`` makes, minus a second parse). The claims are
checked here, before any key is looked up: PyJWT reads the wall clock, which tests cannot
move; a foreign or expired token then never costs a JWKS fetch; and time claims must be
JSON numbers (PyJWT also takes ``"exp": "123"``). The signature covers the very bytes the
claims were read from, so once it verifies the claims checked are the signed ones.

Never ``none`` and never HS*: a symmetric key would be a secret shared with every client.
A key is used only for the algorithms of its type (RSA for RS*/PS*, EC on the matching
curve for ES*, OKP for EdDSA) and, if the JWK names an ``alg``, for that one; RSA keys
under 2048 bits are refused. Keys marked ``"use": "enc"``, without ``verify`` in
``key_ops`` or with private parameters are ignored. A token without ``kid`` is accepted
only while the issuer publishes a single key.

Keys and discovery documents (``{issuer}/.well-known/openid-configuration`` when no
``jwks_url`` is configured; its ``issuer`` must equal the configured one) are cached per
URL for the response's ``Cache-Control: max-age`` (minus ``Age``), kept between 5 minutes
and 24 hours, 1 hour without one. Fetching follows these rules:

* an expired document is still served while a refetch runs in the background, so
  callers wait for the issuer only when nothing usable is cached or a token names a
  ``kid`` the cached set lacks;
* concurrent callers that need the same document share one request;
* a ``kid`` that is not in the cached set triggers one refetch, but no URL is fetched more
  than once per :data:`REFETCH_INTERVAL` (30 s), whatever the reason, so a stream of
  tokens with made-up ``kid`` values costs the issuer at most two requests a minute;
* when a fetch fails (no answer, not 200, over 1 MB, not a usable document) the old
  document stays in use for up to :data:`STALE_GRACE` (24 h) past its expiry, and the
  next attempt waits for the same interval; past that grace, or with nothing cached,
  verification raises :class:`IssuerUnavailable`.

URLs (issuer, JWKS, discovered ``jwks_uri``) must be ``https``; plain ``http`` is allowed
only for loopback hosts (``localhost``, 127.0.0.0/8, ``::1``), for tests and local issuers.
Requests go through a libcurl :class:`~pushgate.providers.transport.Http2Transport` (the
verifier's own unless it is given one; connection pool ``"oidc"``), which trusts the
system bundle and follows no redirects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import jwt
from jwt.algorithms import Algorithm

from pushgate.providers.transport import CLOSED_ERROR, Http2Transport, Request, Response

log = logging.getLogger(__name__)

# The asymmetric JWS algorithms PyJWT verifies, and the JWK key type each needs.
KEY_TYPES: dict[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}
DEFAULT_ALGORITHMS: tuple[str, ...] = tuple(KEY_TYPES)

MAX_TOKEN_CHARS = 16 * 1024
MAX_USER_ID_CHARS = 256
MAX_LEEWAY = 300.0
MAX_DOCUMENT_BYTES = 1024 * 1024
MIN_TTL = 300.0
MAX_TTL = 86_400.0
DEFAULT_TTL = 3600.0
REFETCH_INTERVAL = 30.0
FETCH_TIMEOUT = 10.0  # a registration waits for the fetch
STALE_GRACE = 86_400.0
DISCOVERY_PATH = "/.well-known/openid-configuration"

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class Refusal(StrEnum):
    """Why a token was refused: safe to show to the client that sent it."""

    MALFORMED = "malformed token"
    UNSUPPORTED_ALGORITHM = "unsupported signing algorithm"
    UNKNOWN_KEY = "unknown signing key"
    UNUSABLE_KEY = "signing key unusable for this token"
    BAD_SIGNATURE = "bad signature"
    WRONG_ISSUER = "wrong issuer"
    WRONG_AUDIENCE = "wrong audience"
    NO_EXPIRY = "token has no expiry"
    EXPIRED = "token expired"
    NOT_YET_VALID = "token not yet valid"
    MISSING_USER_CLAIM = "missing user claim"
    INVALID_USER_CLAIM = "invalid user claim"


class IdentityTokenError(Exception):
    """The identity token is refused (401); ``reason`` says why."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


class IssuerUnavailable(Exception):
    """The issuer's keys cannot be had right now (503); try again in ``retry_after`` s."""

    def __init__(self, reason: str, retry_after: float = REFETCH_INTERVAL) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


URL_REFUSAL = "must be an https URL (http only for loopback hosts)"


def url_refusal(url: str) -> str | None:
    """Why ``url`` cannot be an issuer or JWKS URL, or None when it can: it must be https,
    or http to a loopback host."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and _is_loopback(host):
        return None
    return URL_REFUSAL


def check_url(url: str) -> None:
    """Raise ValueError when :func:`url_refusal` refuses ``url``."""
    refusal = url_refusal(url)
    if refusal is not None:
        raise ValueError(f"{url!r} {refusal}")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """Whose tokens to accept, for one application or for the whole server.

    ``issuer`` must equal the tokens' ``iss`` exactly (mind a trailing slash).
    ``audience``: one or several accepted ``aud`` values (a token needs one of them).
    ``jwks_url`` None: taken from the issuer's discovery document. ``user_claim``: the
    claim that holds the user id. ``leeway``: seconds of clock skew allowed.
    """

    issuer: str
    audience: str | tuple[str, ...]
    jwks_url: str | None = None
    user_claim: str = "sub"
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 60.0

    def __post_init__(self) -> None:
        check_url(self.issuer)
        if self.jwks_url is not None:
            check_url(self.jwks_url)
        if not self.audiences or not all(self.audiences):
            raise ValueError("an OIDC audience is required")
        unsafe = [alg for alg in self.algorithms if alg not in KEY_TYPES]
        if unsafe or not self.algorithms:
            raise ValueError(
                f"OIDC algorithms must be some of {', '.join(KEY_TYPES)}; got {unsafe or 'none'}"
            )
        if not self.user_claim:
            raise ValueError("the OIDC user claim must be named")
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(f"OIDC leeway must be between 0 and {MAX_LEEWAY:g} seconds")

    @property
    def audiences(self) -> tuple[str, ...]:
        return (self.audience,) if isinstance(self.audience, str) else self.audience

    @property
    def discovery_url(self) -> str:
        """OIDC Discovery 1.0 sec. 4: a trailing ``/`` of the issuer is dropped first."""
        return self.issuer.rstrip("/") + DISCOVERY_PATH


# -- documents ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A JWK made ready to verify one algorithm: PyJWT's algorithm and prepared key."""

    algorithm: Algorithm
    key: Any

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        return self.algorithm.verify(signing_input, self.key, signature)


class KeySet:
    """The signing keys of one JWKS, made ready per algorithm on first use."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self._keys = keys
        self._by_kid: dict[str, list[int]] = {}
        for index, jwk in enumerate(keys):
            if isinstance(jwk.get("kid"), str):
                self._by_kid.setdefault(jwk["kid"], []).append(index)
        self._ready: dict[tuple[int, str], PublicKey | None] = {}

    def find(self, kid: str | None, alg: str) -> PublicKey | None:
        """The key for a token's ``kid`` and ``alg``; None when there is none by that
        ``kid``. Raises :class:`IdentityTokenError` when there is one but it cannot verify
        ``alg``."""
        if kid is None:
            candidates = [0] if len(self._keys) == 1 else []
        else:
            candidates = self._by_kid.get(kid, [])
        if not candidates:
            return None
        for index in candidates:
            jwk = self._keys[index]
            if jwk["kty"] == KEY_TYPES[alg] and jwk.get("alg", alg) == alg:
                if (index, alg) not in self._ready:
                    self._ready[(index, alg)] = _prepare(jwk, alg)
                key = self._ready[(index, alg)]
                if key is not None:
                    return key
        raise IdentityTokenError(Refusal.UNUSABLE_KEY)


def _prepare(jwk: dict[str, Any], alg: str) -> PublicKey | None:
    """``jwk`` ready for ``alg``; None (logged) when PyJWT finds it unfit: a weak RSA key,
    an EC key on another curve, broken parameters."""
    try:
        parsed = jwt.PyJWK(jwk, algorithm=alg)
        algorithm = parsed.Algorithm
        key = algorithm.prepare_key(parsed.key)
        weakness = algorithm.check_key_length(key)
        if weakness:
            raise jwt.InvalidKeyError(weakness)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        log.warning(
            "OIDC signing key %s unusable for %s: %s",
            jwk.get("kid"),
            alg,
            exc,
            extra={"action": "oidc_key_unusable"},
        )
        return None
    return PublicKey(algorithm, key)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _is_signing_key(jwk: object) -> bool:
    if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
        return False
    if jwk.get("use", "sig") != "sig" or not isinstance(jwk.get("kid", ""), str):
        return False
    if "d" in jwk:  # a private key, published: anyone could sign with it
        return False
    ops = jwk.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def parse_jwks(body: bytes) -> KeySet:
    """A JWKS document's signing keys; ValueError when it has none."""
    keys = _json_object(body).get("keys")
    if not isinstance(keys, list):
        raise ValueError("no keys list")
    usable = [jwk for jwk in keys if _is_signing_key(jwk)]
    if not usable:
        raise ValueError("no signing keys")
    return KeySet(usable)


def parse_discovery(body: bytes) -> tuple[str, str]:
    """``(issuer, jwks_uri)`` of a discovery document; ValueError when unusable."""
    data = _json_object(body)
    issuer, jwks_uri = data.get("issuer"), data.get("jwks_uri")
    if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
        raise ValueError("issuer or jwks_uri missing")
    check_url(jwks_uri)
    return issuer, jwks_uri


def cache_ttl(headers: dict[str, str]) -> float:
    """Seconds to keep a document: ``max-age`` minus ``Age``, within MIN_TTL..MAX_TTL."""
    ttl = DEFAULT_TTL
    for directive in headers.get("cache-control", "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-cache", "no-store"):
            return MIN_TTL
        if name == "max-age" and value.strip().strip('"').isdigit():
            ttl = float(value.strip().strip('"'))
            age = headers.get("age", "").strip()
            if age.isdigit():
                ttl -= float(age)
    return min(max(ttl, MIN_TTL), MAX_TTL)


T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T | None = None
    expires_at: float = 0.0
    attempted_at: float = -math.inf


class DocumentCache(Generic[T]):
    """Documents by URL, fetched and kept by the rules of the module docstring."""

    def __init__(
        self,
        kind: str,
        parse: Callable[[bytes], T],
        transport: Http2Transport,
        clock: Callable[[], float],
    ) -> None:
        self._kind = kind
        self._parse = parse
        self._transport = transport
        self._clock = clock
        self._entries: dict[str, _Entry[T]] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}

    async def get(self, url: str, *, refresh: bool = False) -> T:
        """The document. An expired one is refetched in the background and served
        meanwhile, while within its grace; with ``refresh``, or with nothing usable, the
        caller waits for the fetch. Either way only if the last attempt is at least
        :data:`REFETCH_INTERVAL` old."""
        entry = self._entries.get(url)
        if entry is not None and entry.value is not None and not refresh:
            now = self._clock()
            if now < entry.expires_at:
                return entry.value
            if now < entry.expires_at + STALE_GRACE:
                self._start(url)
                return entry.value
        task = self._start(url)
        if task is not None:
            await asyncio.shield(task)
        return self._usable(url)

    async def wait_idle(self) -> None:
        """Wait for the fetches in flight (background refetches included)."""
        while self._inflight:
            await asyncio.wait(list(self._inflight.values()))

    async def cancel(self) -> None:
        """Abandon the fetches in flight."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, url: str) -> asyncio.Task[None] | None:
        """The fetch of ``url`` in flight, or a new one; None when too soon for one."""
        loop = asyncio.get_running_loop()
        task = self._inflight.get(url)
        if task is not None and task.get_loop() is loop:
            return task
        now = self._clock()
        entry = self._entries.get(url)
        if entry is None:
            entry = self._entries[url] = _Entry()
        elif 0 <= now - entry.attempted_at < REFETCH_INTERVAL:
            return None
        entry.attempted_at = now
        task = loop.create_task(self._fetch(url), name=f"oidc-{self._kind}-fetch")
        self._inflight[url] = task
        task.add_done_callback(lambda done: self._forget(url, done))
        return task

    def _forget(self, url: str, task: asyncio.Task[None]) -> None:
        if self._inflight.get(url) is task:
            del self._inflight[url]

    def _usable(self, url: str) -> T:
        """The cached document if fresh or within its grace; else IssuerUnavailable."""
        entry = self._entries.get(url) or _Entry()
        now = self._clock()
        if entry.value is not None and now < entry.expires_at + STALE_GRACE:
            return entry.value
        wait = max(1.0, REFETCH_INTERVAL - (now - entry.attempted_at))
        raise IssuerUnavailable(f"cannot fetch the identity provider's {self._kind}", wait)

    async def _fetch(self, url: str) -> None:
        entry = self._entries[url]
        request = Request(
            "GET", url, ("accept: application/json",), pool="oidc", capture_headers=True
        )
        try:
            response = await self._transport.request(request)
        except RuntimeError:  # the transport is closed: shutting down
            response = Response(0, (), b"", CLOSED_ERROR, 0.0)
        if response.status != 200:
            failure = response.error or f"HTTP {response.status}"
        elif len(response.body) > MAX_DOCUMENT_BYTES:
            failure = f"larger than {MAX_DOCUMENT_BYTES} bytes"
        else:
            try:
                value = self._parse(response.body)
            except ValueError as exc:
                failure = str(exc)
            else:
                ttl = cache_ttl(response.headers)
                entry.value = value
                entry.expires_at = self._clock() + ttl
                log.info(
                    "OIDC %s fetched",
                    self._kind,
                    extra={"action": "oidc_fetched", "kind": self._kind, "url": url, "ttl": ttl},
                )
                return
        log.warning(
            "OIDC %s fetch failed: %s",
            self._kind,
            failure,
            extra={
                "action": "oidc_fetch_failed",
                "kind": self._kind,
                "url": url,
                "status": response.status,
                "serving_stale": entry.value is not None,
            },
        )


# -- verification -------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_claims(payload: dict[str, Any], config: OidcConfig, now: float) -> str:
    """The user id of a token's (not yet authenticated) claims, or IdentityTokenError."""
    if payload.get("iss") != config.issuer:
        raise IdentityTokenError(Refusal.WRONG_ISSUER)
    aud = payload.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in config.audiences for a in audiences):
        raise IdentityTokenError(Refusal.WRONG_AUDIENCE)
    exp = payload.get("exp")
    if exp is None:
        raise IdentityTokenError(Refusal.NO_EXPIRY)
    times = [payload.get(name) for name in ("exp", "nbf", "iat")]
    if not all(value is None or _is_number(value) for value in times):
        raise IdentityTokenError(Refusal.MALFORMED)
    if now >= exp + config.leeway:
        raise IdentityTokenError(Refusal.EXPIRED)
    if any(value is not None and value > now + config.leeway for value in times[1:]):
        raise IdentityTokenError(Refusal.NOT_YET_VALID)
    user = payload.get(config.user_claim)
    if user is None:
        raise IdentityTokenError(Refusal.MISSING_USER_CLAIM)
    if not isinstance(user, str) or not 0 < len(user) <= MAX_USER_ID_CHARS:
        raise IdentityTokenError(Refusal.INVALID_USER_CLAIM)
    if not user.isprintable():
        raise IdentityTokenError(Refusal.INVALID_USER_CLAIM)
    return user


@dataclass(frozen=True, slots=True)
class _Parsed:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _parse(token: str) -> _Parsed:
    """A compact JWS taken apart by PyJWT (strict base64url and JSON, ``kid`` a string,
    no ``crit`` extension); nothing is verified yet."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise IdentityTokenError(Refusal.MALFORMED)
    try:
        decoded = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise IdentityTokenError(Refusal.MALFORMED) from None
    header = decoded["header"]
    if "crit" in header:
        raise IdentityTokenError(Refusal.MALFORMED)
    signing_input = token.rpartition(".")[0].encode()
    return _Parsed(header, decoded["payload"], signing_input, decoded["signature"])


class OidcVerifier:
    """Verifies identity tokens against any number of issuers; one per process.

    ``transport`` carries the discovery and JWKS requests; without one the verifier makes
    its own (:data:`FETCH_TIMEOUT`, trust from the system bundle), which :meth:`close`
    closes. ``clock`` (epoch seconds) drives the token's time claims and the caches.
    """

    def __init__(
        self,
        transport: Http2Transport | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._owned = transport is None
        self._transport = transport or Http2Transport(
            max_connections_per_host=2, timeout=FETCH_TIMEOUT
        )
        self._clock = clock
        self._jwks = DocumentCache("keys", parse_jwks, self._transport, clock)
        self._discovery = DocumentCache(
            "discovery document", parse_discovery, self._transport, clock
        )

    async def wait_idle(self) -> None:
        """Wait for the fetches in flight, background refetches included (tests)."""
        await self._discovery.wait_idle()
        await self._jwks.wait_idle()

    async def close(self) -> None:
        """Abandon the fetches in flight; close the transport if the verifier made it."""
        await self._discovery.cancel()
        await self._jwks.cancel()
        if self._owned:
            await self._transport.close()

    async def verify(self, token: str, config: OidcConfig) -> str:
        """The user id the token vouches for; IdentityTokenError or IssuerUnavailable."""
        parsed = _parse(token)
        alg = parsed.header.get("alg")
        if not isinstance(alg, str) or alg not in config.algorithms:
            raise IdentityTokenError(Refusal.UNSUPPORTED_ALGORITHM)
        user = check_claims(parsed.claims, config, self._clock())
        key = await self._key(config, parsed.header.get("kid"), alg)
        if not key.verify(parsed.signing_input, parsed.signature):
            raise IdentityTokenError(Refusal.BAD_SIGNATURE)
        return user

    async def _key(self, config: OidcConfig, kid: str | None, alg: str) -> PublicKey:
        jwks_url = config.jwks_url or await self._jwks_uri(config)
        key = (await self._jwks.get(jwks_url)).find(kid, alg)
        if key is None and kid is not None:
            key = (await self._jwks.get(jwks_url, refresh=True)).find(kid, alg)
        if key is None:
            raise IdentityTokenError(Refusal.UNKNOWN_KEY)
        return key

    async def _jwks_uri(self, config: OidcConfig) -> str:
        issuer, jwks_uri = await self._discovery.get(config.discovery_url)
        if issuer != config.issuer:
            log.error(
                "OIDC discovery document names another issuer",
                extra={
                    "action": "oidc_issuer_mismatch",
                    "configured": config.issuer,
                    "discovered": issuer,
                },
            )
            raise IssuerUnavailable("the identity provider's discovery document is inconsistent")
        return jwks_uri
