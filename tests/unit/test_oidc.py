"""Tests for :mod:`pushgate.oidc`: real tokens, real HTTP to a local issuer.

Every verification fetches its keys over libcurl from :class:`tests.oidc_issuer.OidcIssuer`
on 127.0.0.1; time is a :class:`Clock` the tests move, for the tokens and the caches alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from pushgate.oidc import (
    DEFAULT_TTL,
    MAX_TTL,
    MIN_TTL,
    REFETCH_INTERVAL,
    STALE_GRACE,
    IdentityTokenError,
    IssuerUnavailable,
    OidcConfig,
    OidcVerifier,
    Refusal,
    cache_ttl,
    check_url,
)
from pushgate.providers.transport import Http2Transport
from tests.oidc_issuer import OidcIssuer, b64url, forge, new_key, running_issuer


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    yield from running_issuer()


@pytest.fixture
async def transport() -> AsyncIterator[Http2Transport]:
    transport = Http2Transport(timeout=5.0)
    yield transport
    await transport.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(transport: Http2Transport, clock: Clock) -> OidcVerifier:
    return OidcVerifier(transport, clock=clock)


def config_for(issuer: OidcIssuer, **overrides: Any) -> OidcConfig:
    fields: dict[str, Any] = {
        "issuer": issuer.url,
        "audience": issuer.audience,
        "jwks_url": issuer.jwks_url,
    }
    fields.update(overrides)
    return OidcConfig(**fields)


async def refused(verifier: OidcVerifier, token: str, config: OidcConfig) -> Refusal:
    with pytest.raises(IdentityTokenError) as info:
        await verifier.verify(token, config)
    assert str(info.value) == info.value.reason.value  # the token never shows
    return info.value.reason


# -- accepted tokens ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "ES384", "RS512", "EdDSA"])
@pytest.mark.parametrize("publish_alg", [True, False], ids=["jwk-alg", "no-jwk-alg"])
async def test_accepts_a_token_signed_by_a_published_key(
    issuer: OidcIssuer, verifier: OidcVerifier, alg: str, publish_alg: bool
) -> None:
    issuer.rotate(alg, keep_old=False)
    issuer.publish_alg = publish_alg
    assert await verifier.verify(issuer.issue("alice"), config_for(issuer)) == "alice"
    assert issuer.jwks_fetches == 1


async def test_keys_are_fetched_once_for_many_tokens(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    config = config_for(issuer)
    for n in range(5):
        assert await verifier.verify(issuer.issue(f"user-{n}"), config) == f"user-{n}"
    assert issuer.jwks_fetches == 1
    assert issuer.discovery_fetches == 0


async def test_user_id_from_a_configured_claim_and_any_configured_audience(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    config = config_for(issuer, audience=("web", issuer.audience), user_claim="uid")
    token = issuer.issue("sub-1", aud=["other", issuer.audience], uid="u-42")
    assert await verifier.verify(token, config) == "u-42"


async def test_concurrent_verifications_share_one_fetch(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    issuer.jwks_delay = 0.2
    config = config_for(issuer)
    users = await asyncio.gather(
        *(verifier.verify(issuer.issue(f"u{n}"), config) for n in range(10))
    )
    assert users == [f"u{n}" for n in range(10)]
    assert issuer.jwks_fetches == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    issuer.jwks_delay = 0.2
    config = config_for(issuer)
    first = asyncio.ensure_future(verifier.verify(issuer.issue("a"), config))
    second = asyncio.ensure_future(verifier.verify(issuer.issue("b"), config))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second == "b"
    assert issuer.jwks_fetches == 1


# -- discovery ------------------------------------------------------------------------------


async def test_discovery_finds_the_jwks_and_is_cached(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    config = config_for(issuer, jwks_url=None)
    assert await verifier.verify(issuer.issue("alice"), config) == "alice"
    assert await verifier.verify(issuer.issue("bob"), config) == "bob"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)


@pytest.mark.parametrize("trailing_slash", [False, True])
async def test_discovery_under_an_issuer_path(verifier: OidcVerifier, trailing_slash: bool) -> None:
    with OidcIssuer(path="/realms/test") as issuer:
        issuer_id = issuer.url + ("/" if trailing_slash else "")
        issuer.discovery_overrides = {"issuer": issuer_id}
        config = OidcConfig(issuer_id, issuer.audience)
        token = issuer.issue("alice", iss=issuer_id)
        assert await verifier.verify(token, config) == "alice"
        assert issuer.discovery_fetches == 1


async def test_discovery_naming_another_issuer_is_not_trusted(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    issuer.discovery_overrides = {"issuer": "https://evil.example"}
    with pytest.raises(IssuerUnavailable):
        await verifier.verify(issuer.issue(), config_for(issuer, jwks_url=None))
    assert issuer.jwks_fetches == 0


async def test_discovered_jwks_uri_must_be_https(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    issuer.discovery_overrides = {"jwks_uri": "http://keys.example.com/jwks.json"}
    with pytest.raises(IssuerUnavailable):
        await verifier.verify(issuer.issue(), config_for(issuer, jwks_url=None))
    assert issuer.jwks_fetches == 0


# -- refusals -------------------------------------------------------------------------------


def _segment(data: Any) -> str:
    return b64url(json.dumps(data).encode())


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-jwt", id="one-part"),
        pytest.param("a.b.c", id="garbage-parts"),
        pytest.param("a.b.c.d.e", id="jwe-shape"),
        pytest.param(_segment({"alg": "RS256"}) + "." + _segment([1, 2]) + ".c2ln", id="list"),
        pytest.param(_segment({"alg": "RS256"}) + "." + "x" * 20_000 + ".c2ln", id="too-long"),
        pytest.param(forge({"alg": "RS256", "kid": 7}, {"sub": "a"}, b"sig"), id="kid-number"),
        pytest.param(
            forge({"alg": "RS256", "crit": ["exp"], "exp": 1}, {"sub": "a"}, b"sig"), id="crit"
        ),
        pytest.param(
            forge({"alg": "RS256", "crit": ["b64"], "b64": False}, {"sub": "a"}, b"sig"),
            id="unencoded-payload",
        ),
    ],
)
async def test_malformed(issuer: OidcIssuer, verifier: OidcVerifier, token: str) -> None:
    assert await refused(verifier, token, config_for(issuer)) is Refusal.MALFORMED
    assert issuer.jwks_fetches == 0


def _claims(issuer: OidcIssuer, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer.url,
        "aud": issuer.audience,
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        **extra,
    }


async def test_alg_none_is_refused(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    token = forge({"alg": "none", "kid": issuer.current.kid}, _claims(issuer))
    assert await refused(verifier, token, config_for(issuer)) is Refusal.UNSUPPORTED_ALGORITHM
    assert issuer.jwks_fetches == 0


async def test_hs256_signed_with_the_public_key_is_refused(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    """The classic key-confusion attack: HMAC keyed with the issuer's public key."""
    public_pem = issuer.current.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": issuer.current.kid}
    unsigned = forge(header, _claims(issuer)).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    token = f"{unsigned}.{b64url(signature)}"
    assert await refused(verifier, token, config_for(issuer)) is Refusal.UNSUPPORTED_ALGORITHM


async def test_an_algorithm_outside_the_configured_list_is_refused(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    config = config_for(issuer, algorithms=("ES256",))
    assert await refused(verifier, issuer.issue(), config) is Refusal.UNSUPPORTED_ALGORITHM


async def test_unknown_kid_is_refused_after_one_refetch(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    assert await verifier.verify(issuer.issue(), config) == "user-1"
    clock.advance(REFETCH_INTERVAL + 1)
    stranger = new_key("RS256", "stranger")
    assert await refused(verifier, issuer.issue(key=stranger), config) is Refusal.UNKNOWN_KEY
    assert issuer.jwks_fetches == 2


async def test_a_token_without_kid_needs_a_single_published_key(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    assert await verifier.verify(issuer.issue(kid=""), config) == "user-1"
    issuer.rotate()
    clock.advance(DEFAULT_TTL + 1)
    old_key_token = issuer.issue(kid="", key=issuer.keys[0], exp=int(clock.now) + 600)
    assert await verifier.verify(old_key_token, config) == "user-1"  # served stale
    await verifier.wait_idle()  # the background refetch finds two keys
    assert issuer.jwks_fetches == 2
    token = issuer.issue(kid="", exp=int(clock.now) + 600)
    assert await refused(verifier, token, config) is Refusal.UNKNOWN_KEY


async def test_signature_by_an_unpublished_key_under_a_published_kid(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    impostor = new_key("RS256", issuer.current.kid)
    token = issuer.issue(key=impostor)
    assert await refused(verifier, token, config_for(issuer)) is Refusal.BAD_SIGNATURE


async def test_tampered_claims_break_the_signature(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    header, _, signature = issuer.issue("alice").split(".")
    forged_claims = _segment(_claims(issuer, sub="admin"))
    token = f"{header}.{forged_claims}.{signature}"
    assert await refused(verifier, token, config_for(issuer)) is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("key_alg", "token_alg", "publish_alg"),
    [
        pytest.param("RS256", "PS256", True, id="jwk-alg-differs"),
        pytest.param("ES256", "RS256", False, id="kty-differs"),
    ],
)
async def test_a_key_is_used_only_for_its_algorithm(
    issuer: OidcIssuer,
    verifier: OidcVerifier,
    key_alg: str,
    token_alg: str,
    publish_alg: bool,
) -> None:
    published = issuer.rotate(key_alg, keep_old=False)
    issuer.publish_alg = publish_alg
    signer = new_key(token_alg, published.kid)
    token = issuer.issue(key=signer)
    assert await refused(verifier, token, config_for(issuer)) is Refusal.UNUSABLE_KEY


async def test_an_ec_key_on_another_curve_is_unusable(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    """A P-384 key without ``alg`` cannot verify an ES256 token."""
    p384 = issuer.rotate("ES384", keep_old=False)
    issuer.publish_alg = False
    token = issuer.issue(key=new_key("ES256", p384.kid))
    assert await refused(verifier, token, config_for(issuer)) is Refusal.UNUSABLE_KEY


async def test_a_weak_rsa_key_is_unusable(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    weak = new_key("RS256", "weak", rsa_bits=1024)
    issuer.publish(weak)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = issuer.issue(key=weak)
    assert await refused(verifier, token, config_for(issuer)) is Refusal.UNUSABLE_KEY


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        pytest.param({"iss": "https://other.example"}, Refusal.WRONG_ISSUER, id="foreign"),
        pytest.param({"omit": ["iss"]}, Refusal.WRONG_ISSUER, id="no-iss"),
        pytest.param({"aud": "someone-else"}, Refusal.WRONG_AUDIENCE, id="other-aud"),
        pytest.param({"aud": ["a", "b"]}, Refusal.WRONG_AUDIENCE, id="aud-list"),
        pytest.param({"omit": ["aud"]}, Refusal.WRONG_AUDIENCE, id="no-aud"),
        pytest.param({"omit": ["exp"]}, Refusal.NO_EXPIRY, id="no-exp"),
        pytest.param({"exp": "9999999999"}, Refusal.MALFORMED, id="exp-string"),
        pytest.param({"exp": True}, Refusal.MALFORMED, id="exp-bool"),
        pytest.param({"iat": "now"}, Refusal.MALFORMED, id="iat-string"),
        pytest.param({"sub": None}, Refusal.MISSING_USER_CLAIM, id="no-sub"),
        pytest.param({"sub": ""}, Refusal.INVALID_USER_CLAIM, id="empty-sub"),
        pytest.param({"sub": "x" * 257}, Refusal.INVALID_USER_CLAIM, id="long-sub"),
        pytest.param({"sub": "a\nb"}, Refusal.INVALID_USER_CLAIM, id="control-char"),
        pytest.param({"sub": 42}, Refusal.INVALID_USER_CLAIM, id="numeric-sub"),
    ],
)
async def test_claims_are_checked(
    issuer: OidcIssuer, verifier: OidcVerifier, kwargs: dict[str, Any], reason: Refusal
) -> None:
    token = issuer.issue(kwargs.pop("sub", "user-1"), **kwargs)
    assert await refused(verifier, token, config_for(issuer)) is reason
    assert issuer.jwks_fetches == 0  # refused before any key was needed


async def test_user_id_at_the_length_limit_is_accepted(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    user = "ü" * 256
    assert await verifier.verify(issuer.issue(user), config_for(issuer)) == user


@pytest.mark.parametrize(
    ("claim", "offset", "reason"),
    [
        pytest.param("exp", -61, Refusal.EXPIRED, id="expired"),
        pytest.param("exp", -59, None, id="expired-within-leeway"),
        pytest.param("nbf", 61, Refusal.NOT_YET_VALID, id="nbf-future"),
        pytest.param("nbf", 59, None, id="nbf-within-leeway"),
        pytest.param("iat", 61, Refusal.NOT_YET_VALID, id="iat-future"),
        pytest.param("iat", 59, None, id="iat-within-leeway"),
    ],
)
async def test_time_claims_with_leeway(
    issuer: OidcIssuer,
    verifier: OidcVerifier,
    clock: Clock,
    claim: str,
    offset: float,
    reason: Refusal | None,
) -> None:
    times: dict[str, Any] = {claim: int(clock.now) + offset}
    token = issuer.issue("alice", **times)
    if reason is None:
        assert await verifier.verify(token, config_for(issuer)) == "alice"
    else:
        assert await refused(verifier, token, config_for(issuer)) is reason


async def test_expiry_follows_the_clock(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    token = issuer.issue("alice", exp=int(clock.now) + 300)
    config = config_for(issuer, leeway=0)
    assert await verifier.verify(token, config) == "alice"
    clock.advance(301)
    assert await refused(verifier, token, config) is Refusal.EXPIRED


async def test_issuer_helper_shortcuts(issuer: OidcIssuer, verifier: OidcVerifier) -> None:
    """``exp_in`` and ``sign_with_unknown_key``, as the integration tests use them."""
    config = config_for(issuer)
    assert await refused(verifier, issuer.issue(exp_in=-120), config) is Refusal.EXPIRED
    token = issuer.issue(sign_with_unknown_key=True)
    assert await refused(verifier, token, config) is Refusal.UNKNOWN_KEY


async def test_tokens_never_reach_the_logs(
    issuer: OidcIssuer, verifier: OidcVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = config_for(issuer)
    good = issuer.issue("alice")
    bad = issuer.issue(key=new_key("RS256", "stranger"))
    await verifier.verify(good, config)
    await refused(verifier, bad, config)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for token in (good, bad):
        assert token.split(".")[2][:20] not in text
        assert token not in text


# -- key rotation and refetch limits --------------------------------------------------------


async def test_rotation_a_new_kid_is_accepted_after_one_refetch(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    old_token = issuer.issue("alice")
    assert await verifier.verify(old_token, config) == "alice"
    clock.advance(REFETCH_INTERVAL)
    issuer.rotate("ES256")
    assert await verifier.verify(issuer.issue("bob"), config) == "bob"
    assert issuer.jwks_fetches == 2
    assert await verifier.verify(old_token, config) == "alice"  # the old key was kept
    assert await verifier.verify(issuer.issue("carol"), config) == "carol"
    assert issuer.jwks_fetches == 2


async def test_a_withdrawn_key_is_refused_once_the_keys_are_refetched(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    old = issuer.current
    assert await verifier.verify(issuer.issue(), config) == "user-1"
    issuer.rotate(keep_old=False)
    clock.advance(DEFAULT_TTL + 1)
    exp = int(clock.now) + 600
    new_token, old_token = issuer.issue(exp=exp), issuer.issue(key=old, exp=exp)
    assert await verifier.verify(new_token, config) == "user-1"
    assert await refused(verifier, old_token, config) is Refusal.UNKNOWN_KEY
    assert issuer.jwks_fetches == 2


async def test_unknown_kid_spam_refetches_at_most_once_per_window(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    assert await verifier.verify(issuer.issue(), config) == "user-1"
    clock.advance(REFETCH_INTERVAL)
    for _ in range(20):
        token = issuer.issue(kid=uuid.uuid4().hex)
        assert await refused(verifier, token, config) is Refusal.UNKNOWN_KEY
        clock.advance(1)
    assert issuer.jwks_fetches == 2  # the first fetch and one refetch in 20 s
    clock.advance(REFETCH_INTERVAL)
    await refused(verifier, issuer.issue(kid="garbage"), config)
    assert issuer.jwks_fetches == 3


async def test_a_new_kid_right_after_a_fetch_waits_for_the_window(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    assert await verifier.verify(issuer.issue(), config) == "user-1"
    issuer.rotate()
    assert await refused(verifier, issuer.issue(), config) is Refusal.UNKNOWN_KEY
    assert issuer.jwks_fetches == 1
    clock.advance(REFETCH_INTERVAL)
    assert await verifier.verify(issuer.issue(), config) == "user-1"
    assert issuer.jwks_fetches == 2


async def test_concurrent_unknown_kids_share_one_refetch(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    await verifier.verify(issuer.issue(), config)
    clock.advance(REFETCH_INTERVAL)
    issuer.jwks_delay = 0.2
    tokens = [issuer.issue(kid=f"bogus-{n}") for n in range(10)]
    results = await asyncio.gather(
        *(verifier.verify(token, config) for token in tokens), return_exceptions=True
    )
    assert all(isinstance(r, IdentityTokenError) for r in results)
    assert issuer.jwks_fetches == 2


# -- cache lifetime -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "ttl"),
    [
        pytest.param({}, DEFAULT_TTL, id="none"),
        pytest.param({"cache-control": "public, max-age=7200"}, 7200, id="max-age"),
        pytest.param({"cache-control": "max-age=10"}, MIN_TTL, id="floor"),
        pytest.param({"cache-control": "max-age=999999"}, MAX_TTL, id="ceiling"),
        pytest.param({"cache-control": "max-age=7200", "age": "3600"}, 3600, id="age"),
        pytest.param({"cache-control": "no-cache"}, MIN_TTL, id="no-cache"),
        pytest.param({"cache-control": "no-store, max-age=7200"}, MIN_TTL, id="no-store"),
        pytest.param({"cache-control": "max-age=abc"}, DEFAULT_TTL, id="garbage"),
    ],
)
def test_cache_ttl(headers: dict[str, str], ttl: float) -> None:
    assert cache_ttl(headers) == ttl


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [("max-age=600", 600), (None, DEFAULT_TTL), ("max-age=5", MIN_TTL)],
)
async def test_keys_are_refetched_when_their_max_age_is_over(
    issuer: OidcIssuer,
    verifier: OidcVerifier,
    clock: Clock,
    cache_control: str | None,
    ttl: float,
) -> None:
    issuer.cache_control = cache_control
    config = config_for(issuer)
    token = issuer.issue(exp=int(clock.now) + 10 * 86_400)
    await verifier.verify(token, config)
    clock.advance(ttl - 1)
    await verifier.verify(token, config)
    assert issuer.jwks_fetches == 1
    clock.advance(2)
    await verifier.verify(token, config)
    await verifier.wait_idle()
    assert issuer.jwks_fetches == 2


async def test_expired_keys_are_served_while_they_are_refetched(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    token = issuer.issue(exp=int(clock.now) + 86_400)
    await verifier.verify(token, config)
    issuer.jwks_gate = threading.Event()  # the refetch hangs until released
    clock.advance(DEFAULT_TTL + 1)
    try:
        assert await asyncio.wait_for(verifier.verify(token, config), 5) == "user-1"
        assert await asyncio.wait_for(verifier.verify(token, config), 5) == "user-1"
    finally:
        issuer.jwks_gate.set()
    await verifier.wait_idle()
    assert issuer.jwks_fetches == 2


async def test_cached_keys_outlive_an_issuer_outage_for_a_grace_period(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    token = issuer.issue(exp=int(clock.now) + 10 * 86_400)
    await verifier.verify(token, config)
    issuer.stop()  # connections refused from now on
    clock.advance(DEFAULT_TTL + 1)
    assert await verifier.verify(token, config) == "user-1"
    await verifier.wait_idle()
    clock.advance(STALE_GRACE - 2)
    assert await verifier.verify(token, config) == "user-1"
    clock.advance(2)
    with pytest.raises(IssuerUnavailable) as info:
        await verifier.verify(token, config)
    assert 0 < info.value.retry_after <= REFETCH_INTERVAL


async def test_failed_refetches_are_spaced_out(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    config = config_for(issuer)
    token = issuer.issue(exp=int(clock.now) + 86_400)
    await verifier.verify(token, config)
    issuer.available = False
    clock.advance(DEFAULT_TTL + 1)
    for _ in range(10):
        assert await verifier.verify(token, config) == "user-1"
        await verifier.wait_idle()
        clock.advance(1)
    assert issuer.jwks_fetches == 2
    issuer.available = True
    clock.advance(REFETCH_INTERVAL)
    await verifier.verify(token, config)
    await verifier.wait_idle()
    assert issuer.jwks_fetches == 3
    await verifier.verify(token, config)
    assert issuer.jwks_fetches == 3  # fresh again


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>oops</html>", id="not-json"),
        pytest.param(b'{"keys": []}', id="no-keys"),
        pytest.param(b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', id="only-symmetric"),
        pytest.param(b'{"keys": "' + b"x" * (1024 * 1024) + b'"}', id="over-1mb"),
    ],
)
async def test_a_bad_key_document_keeps_the_old_keys(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock, body: bytes
) -> None:
    config = config_for(issuer)
    token = issuer.issue(exp=int(clock.now) + 86_400)
    await verifier.verify(token, config)
    issuer.jwks_body = body
    clock.advance(DEFAULT_TTL + 1)
    assert await verifier.verify(token, config) == "user-1"
    await verifier.wait_idle()
    assert issuer.jwks_fetches == 2
    assert await verifier.verify(token, config) == "user-1"


async def test_an_issuer_down_from_the_start_is_unavailable_not_a_bad_token(
    issuer: OidcIssuer, verifier: OidcVerifier, clock: Clock
) -> None:
    issuer.available = False
    config = config_for(issuer)
    for _ in range(3):
        with pytest.raises(IssuerUnavailable):
            await verifier.verify(issuer.issue(), config)
    assert issuer.jwks_fetches == 1
    issuer.available = True
    clock.advance(REFETCH_INTERVAL)
    assert await verifier.verify(issuer.issue(), config) == "user-1"


async def test_a_published_private_key_is_not_trusted(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    private = issuer.current.private_key
    assert isinstance(private, rsa.RSAPrivateKey)
    leaked = RSAAlgorithm.to_jwk(private, as_dict=True)
    leaked["kid"] = issuer.current.kid
    other = new_key("ES256").public_jwk()
    issuer.jwks_body = json.dumps({"keys": [leaked, other]}).encode()
    assert await refused(verifier, issuer.issue(), config_for(issuer)) is Refusal.UNKNOWN_KEY


async def test_an_unusable_key_is_logged_once(
    issuer: OidcIssuer, verifier: OidcVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    p384 = issuer.rotate("ES384", keep_old=False)
    issuer.publish_alg = False
    config = config_for(issuer)
    for _ in range(3):
        token = issuer.issue(key=new_key("ES256", p384.kid))
        assert await refused(verifier, token, config) is Refusal.UNUSABLE_KEY
    unusable = [r for r in caplog.records if getattr(r, "action", "") == "oidc_key_unusable"]
    assert len(unusable) == 1


async def test_keys_marked_for_encryption_are_ignored(
    issuer: OidcIssuer, verifier: OidcVerifier
) -> None:
    signer = issuer.current
    marked_enc = signer.public_jwk() | {"use": "enc"}
    ops_encrypt = signer.public_jwk() | {"key_ops": ["encrypt"]}
    other = new_key("ES256").public_jwk()
    issuer.jwks_body = json.dumps({"keys": [marked_enc, ops_encrypt, other]}).encode()
    assert await refused(verifier, issuer.issue(), config_for(issuer)) is Refusal.UNKNOWN_KEY


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://accounts.example.com",
        "https://login.example.com/realms/x/",
        "http://127.0.0.1:8080",
        "http://127.0.0.2",
        "http://localhost:9000/path",
        "http://[::1]:8443",
    ],
)
def test_secure_or_loopback_urls_are_allowed(url: str) -> None:
    check_url(url)
    OidcConfig(url, "app")


@pytest.mark.parametrize(
    "url",
    [
        "http://accounts.example.com",
        "http://10.0.0.1",
        "http://localhost.example.com",
        "ftp://127.0.0.1",
        "https://",
        "accounts.example.com",
    ],
)
def test_https_is_required_for_other_hosts(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        check_url(url)
    with pytest.raises(ValueError):
        OidcConfig(url, "app")
    with pytest.raises(ValueError):
        OidcConfig("https://accounts.example.com", "app", jwks_url=url)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"audience": ""}, id="empty-audience"),
        pytest.param({"audience": ()}, id="no-audience"),
        pytest.param({"algorithms": ("HS256",)}, id="hs256"),
        pytest.param({"algorithms": ("RS256", "none")}, id="none"),
        pytest.param({"algorithms": ()}, id="no-algorithms"),
        pytest.param({"user_claim": ""}, id="no-user-claim"),
        pytest.param({"leeway": -1}, id="negative-leeway"),
        pytest.param({"leeway": 3600}, id="huge-leeway"),
    ],
)
def test_configuration_is_checked(overrides: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"issuer": "https://id.example.com", "audience": "app"}
    with pytest.raises(ValueError):
        OidcConfig(**{**fields, **overrides})


def test_discovery_url_drops_a_trailing_slash() -> None:
    config = OidcConfig("https://id.example.com/tenant/", "app")
    assert config.discovery_url == "https://id.example.com/tenant/.well-known/openid-configuration"


async def test_a_verifier_without_a_transport_makes_and_closes_its_own(
    issuer: OidcIssuer, clock: Clock
) -> None:
    verifier = OidcVerifier(clock=clock)
    try:
        assert await verifier.verify(issuer.issue("alice"), config_for(issuer)) == "alice"
    finally:
        await verifier.close()
    await verifier.close()  # idempotent
