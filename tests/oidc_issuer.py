"""A local OpenID Connect issuer for tests: discovery and JWKS over real HTTP on 127.0.0.1.

It serves ``{issuer}/.well-known/openid-configuration`` and ``{issuer}/jwks.json`` from a
``http.server`` thread (HTTP/1.0, so no connection outlives :meth:`OidcIssuer.stop`),
mints tokens signed by its current key, rotates keys and counts the fetches::

    with OidcIssuer() as issuer:
        token = issuer.issue("user-1")               # aud defaults to issuer.audience
        issuer.rotate()                              # a new current key; the old one stays
        issuer.rotate(keep_old=False)                # ... or is withdrawn
        issuer.available = False                     # 503 from now on
        assert issuer.jwks_fetches == 1

The server process under test reaches it like any issuer: ``PUSHGATE_OIDC_ISSUER`` =
``issuer.url``, ``PUSHGATE_OIDC_AUDIENCE`` = ``issuer.audience``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}


@dataclass(frozen=True)
class SigningKey:
    """A private key, the algorithm it signs with, and its ``kid``."""

    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)

    def public_jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig"})
        if with_alg:
            jwk["alg"] = self.alg
        return jwk


def new_key(alg: str = "RS256", kid: str | None = None, *, rsa_bits: int = 2048) -> SigningKey:
    """A fresh key for ``alg`` (RS*/PS* RSA, ES* on its curve, EdDSA Ed25519)."""
    private: PrivateKey
    if alg.startswith(("RS", "PS")):
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    elif alg in _CURVES:
        private = ec.generate_private_key(_CURVES[alg])
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"no key type for {alg}")
    return SigningKey(kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg, private)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with whatever header, payload and signature bytes a test wants."""
    return ".".join(
        (
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(payload).encode()),
            b64url(signature),
        )
    )


class OidcIssuer:
    """An OIDC issuer on ``http://127.0.0.1:<free port><path>``; see the module docstring.

    ``jwks_fetches`` and ``discovery_fetches`` count the requests, answered or not.
    Knobs a test may set at any time: ``available`` (False: every request gets 503),
    ``cache_control`` (the JWKS and discovery ``Cache-Control``, None for none),
    ``jwks_delay`` (seconds the JWKS answer is held back), ``jwks_gate`` (an event the
    JWKS answer waits for, 10 s at most), ``jwks_body`` (raw bytes served
    instead of the key set), ``publish_alg`` (whether the JWKs carry ``alg``) and
    ``discovery_overrides`` (fields merged into the discovery document).
    """

    def __init__(
        self,
        *,
        alg: str = "RS256",
        path: str = "",
        audience: str = "pushgate-test-app",
        cache_control: str | None = "max-age=3600",
    ) -> None:
        self.audience = audience
        self.cache_control = cache_control
        self.available = True
        self.jwks_delay = 0.0
        self.jwks_gate: threading.Event | None = None
        self.jwks_body: bytes | None = None
        self.publish_alg = True
        self.discovery_overrides: dict[str, Any] = {}
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self._path = path.rstrip("/")
        self._lock = threading.Lock()
        self.current = new_key(alg)
        self.keys: list[SigningKey] = [self.current]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    # -- addresses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The issuer identifier: what tokens carry as ``iss``."""
        return f"http://127.0.0.1:{self.port}{self._path}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks.json"

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> OidcIssuer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="oidc-issuer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: from now on connections are refused."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OidcIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- keys -----------------------------------------------------------------------------

    def publish(self, key: SigningKey) -> None:
        with self._lock:
            self.keys.append(key)

    def retire(self, kid: str) -> None:
        with self._lock:
            self.keys = [key for key in self.keys if key.kid != kid]

    def rotate(
        self, alg: str | None = None, *, kid: str | None = None, keep_old: bool = True
    ) -> SigningKey:
        """Publish a new key and sign with it from now on; withdraw the others unless
        ``keep_old``."""
        key = new_key(alg or self.current.alg, kid)
        with self._lock:
            self.keys = [*self.keys, key] if keep_old else [key]
            self.current = key
        return key

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = list(self.keys)
        return {"keys": [key.public_jwk(with_alg=self.publish_alg) for key in keys]}

    def reset_counts(self) -> None:
        with self._lock:
            self.jwks_fetches = self.discovery_fetches = 0

    # -- tokens ---------------------------------------------------------------------------

    def issue(
        self,
        sub: Any = "user-1",
        *,
        aud: str | list[str] | None = None,
        iss: str | None = None,
        exp: float | None = None,
        exp_in: float = 600,
        iat: float | None = None,
        nbf: float | None = None,
        key: SigningKey | None = None,
        sign_with_unknown_key: bool = False,
        kid: str | None = None,
        alg: str | None = None,
        omit: Iterable[str] = (),
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed by ``key`` (default: the current key).

        Defaults: ``iss`` this issuer, ``aud`` :attr:`audience`, ``iat`` now, ``exp``
        ``exp_in`` seconds from now (ten minutes; negative for an expired token).
        ``sign_with_unknown_key``: a fresh key under a fresh ``kid``, never published.
        ``kid`` overrides the header's key id (``""`` drops it), ``alg`` the algorithm (it
        must suit the key); claims named in ``omit`` are left out, as is ``sub`` when None.
        """
        signer = key or (new_key(self.current.alg) if sign_with_unknown_key else self.current)
        now = time.time()
        payload: dict[str, Any] = {
            "iss": self.url if iss is None else iss,
            "aud": self.audience if aud is None else aud,
            "iat": int(now) if iat is None else iat,
            "exp": int(now + exp_in) if exp is None else exp,
        }
        if sub is not None:
            payload["sub"] = sub
        if nbf is not None:
            payload["nbf"] = nbf
        payload.update(claims)
        for name in omit:
            payload.pop(name, None)
        header: dict[str, Any] = {"kid": signer.kid if kid is None else kid}
        if header["kid"] == "":
            del header["kid"]
        header.update(headers or {})
        return jwt.encode(payload, signer.private_key, algorithm=alg or signer.alg, headers=header)

    # -- HTTP -----------------------------------------------------------------------------

    def _discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_url,
            "authorization_endpoint": f"{self.url}/authorize",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.keys}),
            **self.discovery_overrides,
        }

    def _answer(self, path: str) -> tuple[int, bytes]:
        """Every request to a known path counts, answered or not."""
        if path == f"{self._path}/.well-known/openid-configuration":
            with self._lock:
                self.discovery_fetches += 1
            if not self.available:
                return 503, b'{"error": "temporarily_unavailable"}'
            return 200, json.dumps(self._discovery()).encode()
        if path == f"{self._path}/jwks.json":
            with self._lock:
                self.jwks_fetches += 1
            if not self.available:
                return 503, b'{"error": "temporarily_unavailable"}'
            if self.jwks_gate is not None:
                self.jwks_gate.wait(10)
            if self.jwks_delay:
                time.sleep(self.jwks_delay)
            body = self.jwks_body
            return 200, json.dumps(self.jwks()).encode() if body is None else body
        return 404, b'{"error": "not_found"}'

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = issuer._answer(self.path)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                if status == 200 and issuer.cache_control is not None:
                    self.send_header("cache-control", issuer.cache_control)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def running_issuer(**kwargs: Any) -> Iterator[OidcIssuer]:
    """For a pytest fixture: ``yield from running_issuer()``."""
    with OidcIssuer(**kwargs) as issuer:
        yield issuer
