"""A strict fake of the APNs provider API (specs/providers.md sec. 1 and 10.1).

Each request is checked in this fixed order, and the first failure is the answer:

1. method and path: ``405 MethodNotAllowed``, ``404 BadPath``, ``400 MissingDeviceToken``,
   ``400 BadDeviceToken`` (malformed token);
2. authentication: the TLS client certificate on certificate connections, else the
   ``authorization`` JWT, and the connection's binding to its first key and team;
3. headers: ``DuplicateHeaders``, ``apns-push-type``, ``apns-topic``, ``apns-id``,
   ``apns-expiration``, ``apns-priority``, ``apns-collapse-id``;
4. body: ``PayloadEmpty``, ``413 PayloadTooLarge``, JSON object and ``aps`` shape;
5. device token state (:meth:`FakeApns.set_token_state`);
6. rate limits: ``429 TooManyProviderTokenUpdates`` (more than 2 new tokens per key in
   20 minutes, on by default), ``429 TooManyRequests`` (per device, off by default);
7. scripted replies (:meth:`FakeApns.script`), which replace the success of a valid request.

Steps 1, 3 and 4 live in :class:`~pushgate.fakes.apns_rules.ApnsRules`, whose knobs are
:attr:`FakeApns.rules`.

Token-auth connections start with ``SETTINGS_MAX_CONCURRENT_STREAMS`` = 1 and get
:attr:`FakeApns.max_concurrent_streams` after the first request with a valid JWT;
certificate connections get it at once. Streams over the limit are refused with
``RST_STREAM REFUSED_STREAM``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Unpack

import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.settings import SettingCodes

from pushgate.fakes.apns_auth import (
    ApnsRegistry,
    ApnsSigningKey,
    CertificateRecord,
    Credential,
    Environment,
    KeyRecord,
    Reject,
    TokenChurn,
    check_certificate,
    check_token,
    generate_key,
)
from pushgate.fakes.apns_auth import environments as _environments
from pushgate.fakes.apns_rules import ApnsRules, valid_apns_id
from pushgate.fakes.base import FakeServer
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.state import RateLimiter, Script, ScriptOptions, retry_after_header
from pushgate.fakes.tls import FakeCA

__all__ = ["ApnsRegistry", "ApnsSigningKey", "FakeApns", "PriorityFrame", "ReceivedPush"]

TokenState = Literal["active", "unregistered", "expired", "other_env", "other_topic"]
_TOKEN_STATES: dict[str, Reject | None] = {
    "active": None,
    "unregistered": Reject(410, "Unregistered", "token state unregistered"),
    "expired": Reject(410, "ExpiredToken", "token state expired"),
    "other_env": Reject(400, "BadDeviceToken", "token belongs to the other environment"),
    "other_topic": Reject(400, "DeviceTokenNotForTopic", "token belongs to another topic"),
}
_EXCESS_STREAMS = b'{"reason":"Maximum active streams violated for this endpoint"}'
# What APNs advertises (sec. 1.8); MAX_CONCURRENT_STREAMS is set per connection.
SETTINGS = {
    SettingCodes.HEADER_TABLE_SIZE: 4096,
    SettingCodes.INITIAL_WINDOW_SIZE: 65535,
    SettingCodes.MAX_FRAME_SIZE: 16384,
    SettingCodes.MAX_HEADER_LIST_SIZE: 8000,
}


@dataclass(frozen=True)
class ReceivedPush:
    """One request as the fake saw it, and its answer (``status`` None: dropped)."""

    token: str
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    payload: bytes
    json: Any  # the parsed body when it is a JSON object, else None
    status: int | None
    reason: str | None
    apns_id: str
    environment: Environment
    connection_id: int
    stream_id: int
    received_at: float
    key_id: str | None = None
    team_id: str | None = None
    certificate_uid: str | None = None
    timestamp: int | None = None  # the Unregistered timestamp (ms) that was sent
    detail: str = ""  # why the fake rejected it; never sent to the client
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PriorityFrame:
    """A PRIORITY frame (or HEADERS with priority) that a client sent; APNs asks for none."""

    connection_id: int
    stream_id: int
    depends_on: int | None
    weight: int | None
    exclusive: bool | None


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    reason: str


@dataclass
class _ConnectionState:
    connection: Connection
    certificate: bytes | None
    key_id: str | None = None
    team_id: str | None = None
    raised: bool = False


@dataclass
class _Attempt:
    """What the checks learnt about one request, for its record."""

    token: str = ""
    credential: Credential | None = None
    warnings: list[str] = field(default_factory=list)


class FakeApns(FakeServer[ReceivedPush, _Script]):
    """One APNs environment on one port. Public methods are safe from any thread.

    The attributes below are knobs with the documented defaults; set them before
    sending the requests they should affect.
    """

    def __init__(
        self,
        ca: FakeCA,
        environment: Environment = "production",
        *,
        registry: ApnsRegistry | None = None,
    ) -> None:
        super().__init__(
            ca.server_context(("h2",), client_certificates=True),
            SETTINGS,
            lambda push: push.status == 200,
            idle_goaway_data=b'{"reason":"IdleTimeout"}',
        )
        self.ca = ca
        self.environment: Environment = environment
        self.registry = registry or ApnsRegistry()
        self.max_concurrent_streams = 1000
        self.initial_token_streams = 1
        self.lower_streams_after_rejection = False  # the 2016 behaviour, optional
        self.rules = ApnsRules()  # the request checks' knobs
        self.max_token_age = 3600.0
        self.clock_skew = 60.0
        self.token_churn: TokenChurn | None = TokenChurn(limit=2, window=20 * 60)
        self.device_rate_limit: RateLimiter | None = None
        self.clock: Callable[[], float] = time.time
        self._token_states: dict[str, tuple[TokenState, int | None]] = {}
        self._connections: dict[int, _ConnectionState] = {}
        self._priority: list[PriorityFrame] = []

    # Serving

    @property
    def goaway_on_excess_streams(self) -> bool:
        """Strict mode: a stream over the limit closes the connection with GOAWAY
        ("Maximum active streams violated for this endpoint", as APNs does) instead of
        being refused alone with RST_STREAM REFUSED_STREAM."""
        return self._server.excess_stream_goaway is not None

    @goaway_on_excess_streams.setter
    def goaway_on_excess_streams(self, strict: bool) -> None:
        self._server.excess_stream_goaway = _EXCESS_STREAMS if strict else None

    @property
    def idle_timeout(self) -> float | None:
        """Seconds without a request after which a connection gets GOAWAY IdleTimeout."""
        return self._server.idle_timeout

    @idle_timeout.setter
    def idle_timeout(self, seconds: float | None) -> None:
        self._server.idle_timeout = seconds

    # Credentials

    def register_key(
        self,
        team_id: str = "TEAM123456",
        topics: Iterable[str] | None = None,
        *,
        environments: Iterable[Environment] | None = None,
        topic_specific: bool = False,
    ) -> ApnsSigningKey:
        """Generate a P-256 signing key for ``team_id``, allowed to push to ``topics``.

        ``topics`` are bundle ids (None: any). Keys work in both environments unless
        ``environments`` limits them (a team-scoped key); a ``topic_specific`` key answers
        a topic outside ``topics`` with ``403 UnrelatedKeyIdInToken`` instead of
        ``400 TopicDisallowed``.
        """
        envs = _environments(environments)
        return generate_key(self.registry, team_id, topics, envs, topic_specific)

    def register_key_pem(
        self,
        key_id: str,
        team_id: str,
        public_key_pem: str,
        topics: Iterable[str] | None = None,
        *,
        environments: Iterable[Environment] | None = None,
        topic_specific: bool = False,
    ) -> None:
        """Register your own key: its public key PEM (a ``.p8`` private key also works)."""
        data = public_key_pem.encode()
        key: object
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("an APNs signing key is an EC P-256 key")
        scoped = None if topics is None else tuple(topics)
        record = KeyRecord(
            key_id, team_id, key, scoped, _environments(environments), topic_specific
        )
        self.registry.add_key(record)

    def register_certificate(
        self,
        bundle_id: str = "com.example.app",
        *,
        topics: Iterable[str] | None = None,
        environments: Iterable[Environment] | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> tuple[str, str]:
        """A client certificate (PEM, key PEM) for certificate auth, with UID ``bundle_id``.

        By default it is valid in this fake's environment only; ``topics`` makes it a
        multi-topic certificate (``apns-topic`` then required).
        """
        cert_pem, key_pem = self.ca.issue_client_certificate(
            f"Apple Push Services: {bundle_id}",
            bundle_id,
            not_before=not_before,
            not_after=not_after,
        )
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
        record = CertificateRecord(
            certificate.serial_number,
            bundle_id,
            tuple(topics) if topics is not None else (bundle_id,),
            topics is not None,
            _environments(environments if environments is not None else (self.environment,)),
            certificate.not_valid_before_utc,
            certificate.not_valid_after_utc,
        )
        self.registry.add_certificate(record)
        return cert_pem, key_pem

    def revoke_certificate(self, cert_pem: str) -> None:
        """Later requests on connections with this certificate get ``403 BadCertificate``."""
        self.registry.revoke(x509.load_pem_x509_certificate(cert_pem.encode()).serial_number)

    # Scripting

    def set_token_state(
        self, token: str, state: TokenState, timestamp_ms: int | None = None
    ) -> None:
        """How the fake answers for ``token``; ``timestamp_ms`` goes with ``unregistered``."""
        if state not in _TOKEN_STATES:
            raise ValueError(f"unknown token state {state!r}")
        if state == "unregistered" and timestamp_ms is None:
            timestamp_ms = int(self.clock() * 1000)
        with self._lock:
            self._token_states[token] = (state, timestamp_ms)

    def script(
        self,
        status: int | None = 410,
        reason: str = "Unregistered",
        token: str | None = None,
        times: int | None = 1,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid requests (to ``token``, or to any) this way
        (``options``: :class:`~pushgate.fakes.state.ScriptOptions`).

        ``status`` None (or 200) with a ``delay`` is a slow success. ``goaway`` answers,
        then sends GOAWAY with debug data ``{"reason": reason}`` (say ``503 Shutdown``)
        and closes the connection.
        """
        self._scripts.add(_Script(status=status, token=token, reason=reason, **options), times)

    def goaway(self, reason: str = "Shutdown") -> None:
        """Send GOAWAY with ``{"reason": reason}`` on every open connection, after their
        current requests are answered."""
        self._goaway_all(json.dumps({"reason": reason}, separators=(",", ":")).encode())

    def reset(self) -> None:
        """Forget records, scripts, token states and rate-limit history (not credentials)."""
        super().reset()
        if self.token_churn is not None:
            self.token_churn.clear()
        if self.device_rate_limit is not None:
            self.device_rate_limit.clear()
        with self._lock:
            self._token_states.clear()
            self._priority.clear()

    # Records (also :attr:`received`, :attr:`delivered` with status 200, :meth:`wait_for`)

    @property
    def priority_frames(self) -> list[PriorityFrame]:
        with self._lock:
            return list(self._priority)

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        state = _ConnectionState(connection, connection.peer_certificate)
        with self._lock:
            self._connections[connection.id] = state
        if state.certificate is not None:
            return self.max_concurrent_streams
        return self.initial_token_streams

    def connection_lost(self, connection: Connection) -> None:
        with self._lock:
            self._connections.pop(connection.id, None)

    def priority_received(self, connection: Connection, event: h2.events.PriorityUpdated) -> None:
        frame = PriorityFrame(
            connection.id, event.stream_id or 0, event.depends_on, event.weight, event.exclusive
        )
        with self._lock:
            self._priority.append(frame)

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        with self._lock:
            state = self._connections[request.connection.id]
        attempt = _Attempt()
        reject = self._check(request, state, attempt, now)
        sent_id = request.header("apns-id")
        if sent_id is not None and valid_apns_id(
            sent_id, allow_upper_case=self.rules.accept_upper_case_apns_id
        ):
            apns_id = sent_id
        else:
            apns_id = str(uuid.uuid4())
        record = self._record(request, attempt, apns_id, now)
        script = self._scripts.take(attempt.token) if reject is None else None
        retry_after = None
        if script is not None:
            dropped = replace(record, status=None, detail="scripted: dropped")
            if await self._delay_or_drop(script, request, dropped):
                return None
            if script.status not in (None, 200):
                reject = Reject(script.status, script.reason, "scripted")
            retry_after = script.retry_after
        response, timestamp = self._answer(apns_id, reject, attempt.token, retry_after)
        self._records.add(
            replace(
                record,
                status=response.status,
                reason=reject.reason if reject else None,
                detail=reject.detail if reject else "",
                timestamp=timestamp,
            )
        )
        if state.certificate is None and state.raised and self.lower_streams_after_rejection:
            ok = response.status == 200
            request.connection.set_stream_limit(self.max_concurrent_streams if ok else 1)
        if script is not None and script.goaway:
            reason = script.reason if script.status not in (None, 200) else "Shutdown"
            request.connection.goaway(json.dumps({"reason": reason}).encode())
        return response

    # The checks, in order

    def _check(
        self, request: Request, state: _ConnectionState, attempt: _Attempt, now: float
    ) -> Reject | None:
        attempt.token, reject = self.rules.check_path(request)
        if reject is None:
            credential = self._authenticate(request, state, now)
            if isinstance(credential, Reject):
                return credential
            attempt.credential = credential
            reject = (
                self.rules.check_headers(request, credential, attempt.warnings)
                or self.rules.check_body(request)
                or self._check_token_state(attempt.token)
                or self._check_rates(attempt, credential, now)
            )
        return reject

    def _authenticate(
        self, request: Request, state: _ConnectionState, now: float
    ) -> Credential | Reject:
        if state.certificate is not None:
            return check_certificate(
                state.certificate, self.registry, self.environment, datetime.fromtimestamp(now, UTC)
            )
        credential = check_token(
            request.header("authorization"),
            self.registry,
            self.environment,
            now,
            max_age=self.max_token_age,
            skew=self.clock_skew,
        )
        if isinstance(credential, Reject):
            return credential
        with self._lock:
            if state.team_id is not None and credential.team_id != state.team_id:
                return Reject(403, "InvalidProviderToken", f"connection is team {state.team_id}")
            if state.key_id is not None and credential.key_id != state.key_id:
                return Reject(403, "UnrelatedKeyIdInToken", f"connection is key {state.key_id}")
            state.key_id, state.team_id = credential.key_id, credential.team_id
            raise_limit = not state.raised
            state.raised = True
        if raise_limit:
            state.connection.set_stream_limit(self.max_concurrent_streams)
        return credential

    def _check_token_state(self, token: str) -> Reject | None:
        with self._lock:
            state, _ = self._token_states.get(token, ("active", None))
        return _TOKEN_STATES[state]

    def _check_rates(self, attempt: _Attempt, credential: Credential, now: float) -> Reject | None:
        churn = self.token_churn
        if (
            churn is not None
            and credential.key_id is not None
            and credential.issued_at is not None
            and not churn.allow(credential.key_id, credential.issued_at, now)
        ):
            return Reject(429, "TooManyProviderTokenUpdates", "new provider token too soon")
        limiter = self.device_rate_limit
        if limiter is not None and limiter.retry_after(attempt.token, now) > 0:
            return Reject(429, "TooManyRequests", "too many requests to this device")
        return None

    # Answers and records

    def _answer(
        self, apns_id: str, reject: Reject | None, token: str, retry_after: float | None
    ) -> tuple[Response, int | None]:
        headers = [("apns-id", apns_id)]
        if self.environment == "sandbox":
            headers.append(("apns-unique-id", str(uuid.uuid4())))
        if retry_after is not None:
            headers.append(("retry-after", retry_after_header(retry_after)))
        if reject is None:
            return Response(200, headers), None
        body: dict[str, object] = {"reason": reject.reason}
        timestamp = None
        if reject.reason == "Unregistered":
            with self._lock:
                _, timestamp = self._token_states.get(token, ("active", None))
            timestamp = timestamp if timestamp is not None else int(self.clock() * 1000)
            body["timestamp"] = timestamp
        headers.append(("content-type", "application/json"))
        data = json.dumps(body, separators=(",", ":")).encode()
        return Response(reject.status, headers, data), timestamp

    def _record(
        self, request: Request, attempt: _Attempt, apns_id: str, now: float
    ) -> ReceivedPush:
        parsed = request.json()
        credential = attempt.credential
        return ReceivedPush(
            token=attempt.token,
            headers=request.header_map(),
            payload=request.body,
            json=parsed if isinstance(parsed, dict) else None,
            status=None,
            reason=None,
            apns_id=apns_id,
            environment=self.environment,
            connection_id=request.connection.id,
            stream_id=request.stream_id,
            received_at=now,
            key_id=credential.key_id if credential else None,
            team_id=credential.team_id if credential else None,
            certificate_uid=credential.certificate_uid if credential else None,
            warnings=tuple(attempt.warnings),
        )
