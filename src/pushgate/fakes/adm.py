"""A strict fake of Amazon Device Messaging and its Login with Amazon token endpoint
(specs/providers.md sec. 3, 10.3).

One HTTP/2 + TLS port serves ``POST /auth/o2/token`` (also ``/auth/O2/token``) and
``POST /messaging/registrations/{id}/messages``. A send is checked in this fixed order,
the first failure being the answer (``{"reason": ...}``):

1. path (``404``), then method (``405``);
2. ``Authorization: Bearer`` a live token of an enabled client: else ``401
   AccessTokenExpired`` (ADM documents no other 401 reason, so unknown tokens get it too);
3. headers: ``X-Amzn-Type-Version``, ``X-Amzn-Accept-Type``, ``Content-Type`` and
   ``Accept`` exactly as sec. 3.2: else ``400 InvalidType`` (the fake's choice for the
   last two: ADM documents no error for them);
4. body: a JSON object of known fields (``data``, ``consolidationKey``, ``expiresAfter``,
   ``md5``, ``notification``; unknown ones refused while :attr:`FakeAdm.strict`) with
   ``data`` string to string (``400 InvalidData``), ``data`` at most 6 KB as compact JSON
   (``413 MessageTooLarge``), ``consolidationKey`` a string of at most 64 characters
   (``400 InvalidConsolidationKey``), ``expiresAfter`` an integer 1 ... 2678400 (``400
   InvalidExpiration``), ``md5`` equal to :func:`data_checksum` (``400 InvalidChecksum``);
5. the registration id: malformed, unknown or ``invalid`` → ``400 InvalidRegistrationId``,
   ``unregistered`` → ``400 Unregistered``; ``rotated`` is accepted, and the 200 names the
   new id;
6. the per-registration rate limit, when set → ``429 MaxRateExceeded`` + ``Retry-After``;
7. scripted replies (:meth:`FakeAdm.script`), which replace the success of a valid send.

A success is ``200 {"registrationID": <id>}`` with ``X-Amzn-RequestId`` and
``X-Amzn-Data-md5``. The token endpoint is :mod:`pushgate.fakes.client_credentials`'s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Unpack

from pushgate.fakes.base import H2_SETTINGS, FakeServer
from pushgate.fakes.client_credentials import (
    ClientCredentialsIssuer,
    answer_grant,
    bearer,
    check_grant,
    parse_form,
)
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.state import RateLimiter, Script, ScriptOptions, retry_after_header
from pushgate.fakes.tls import FakeCA

__all__ = ["FakeAdm", "ReceivedAdmMessage", "data_checksum"]

RegistrationState = Literal["active", "unregistered", "invalid", "rotated"]
SCOPE = "messaging:push"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
TOKEN_PATHS = frozenset({"/auth/o2/token", "/auth/O2/token"})
MAX_DATA = 6144
MAX_EXPIRES_AFTER = 2678400
MAX_CONSOLIDATION_KEY = 64
_SEND_PATH = re.compile(r"/messaging/registrations/([^/]+)/messages")
_FIELDS = frozenset({"data", "consolidationKey", "expiresAfter", "md5", "notification"})
_TOKEN_FIELDS = frozenset({"grant_type", "scope", "client_id", "client_secret"})
_DEFAULT_REASONS = {
    400: "InvalidData",
    401: "AccessTokenExpired",
    413: "MessageTooLarge",
    429: "MaxRateExceeded",
    500: "InternalServerError",
    503: "",  # sec. 3.3 names no reason: an empty body
}


def data_checksum(data: Mapping[str, str]) -> str:
    """ADM's ``md5`` of ``data`` as recalled in sec. 3.2 **[verify]**: the pairs sorted by
    key, ``key:value`` joined with ``,``, UTF-8, MD5, base64."""
    text = ",".join(f"{key}:{value}" for key, value in sorted(data.items()))
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode()


@dataclass(frozen=True)
class ReceivedAdmMessage:
    """One send request as the fake saw it, and its answer (``status`` None: dropped)."""

    registration_id: str | None
    client_id: str | None  # whose access token authorised it
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    body: Any  # the parsed JSON body, or None
    raw: bytes
    status: int | None
    reason: str | None
    connection_id: int
    stream_id: int
    received_at: float
    new_registration_id: str | None = None  # a rotated registration's current id


@dataclass(frozen=True)
class _Error:
    status: int
    reason: str
    retry_after: float | None = None

    def body(self) -> bytes:
        return json.dumps({"reason": self.reason}).encode() if self.reason else b""


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    reason: str


@dataclass
class _Attempt:
    registration_id: str | None = None
    client_id: str | None = None
    new_registration_id: str | None = None


class FakeAdm(FakeServer[ReceivedAdmMessage, _Script]):
    """ADM and its token endpoint on one port. Public methods are safe from any thread.

    The attributes below are knobs with the documented defaults.
    """

    def __init__(self, ca: FakeCA) -> None:
        super().__init__(ca.server_context(("h2",)), H2_SETTINGS, lambda m: m.status == 200)
        self.registration_pattern = re.compile(r"[A-Za-z0-9._\-+/=!]{8,2048}")
        self.access_token_lifetime = 3600
        self.strict = True  # unknown body fields refused
        self.accept_unknown_registrations = False  # unknown well-formed ids are active
        self.rate_limit: RateLimiter | None = None  # per registration id
        self.clock: Callable[[], float] = time.time
        self.issuer = ClientCredentialsIssuer("Atc|")
        self._registrations: dict[str, tuple[RegistrationState, str | None]] = {}

    @property
    def token_url(self) -> str:
        return self.url + "/auth/o2/token"

    # Credentials and registrations

    def create_client(self) -> tuple[str, str]:
        """A new Login with Amazon client: ``(client id, client secret)``."""
        client_id = "amzn1.application-oa2-client." + secrets.token_hex(16)
        client_secret = secrets.token_hex(32)
        self.issuer.register(client_id, client_secret)
        return client_id, client_secret

    def register_client(self, client_id: str, client_secret: str) -> None:
        """Accept an existing client (say, from an earlier run)."""
        self.issuer.register(client_id, client_secret)

    def disable_client(self, client_id: str) -> None:
        """Its grants get ``401 invalid_client`` and its tokens stop working."""
        self.issuer.disable(client_id)

    def create_registration(self) -> str:
        """A new active registration id."""
        registration_id = "amzn1.adm-registration.v3." + secrets.token_urlsafe(96)
        self.register_registration(registration_id)
        return registration_id

    def register_registration(
        self,
        registration_id: str,
        state: RegistrationState = "active",
        *,
        rotated_to: str | None = None,
    ) -> None:
        """Set a registration's state; ``rotated`` needs ``rotated_to``, the id ADM now
        names for it (registered active)."""
        if state not in ("active", "unregistered", "invalid", "rotated"):
            raise ValueError(f"unknown registration state {state!r}")
        if (state == "rotated") != (rotated_to is not None):
            raise ValueError("rotated_to is given exactly for the rotated state")
        with self._lock:
            self._registrations[registration_id] = (state, rotated_to)
            if rotated_to is not None:
                self._registrations.setdefault(rotated_to, ("active", None))

    def script(
        self,
        status: int | None = 500,
        reason: str | None = None,
        times: int | None = 1,
        token: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid sends (to registration ``token``, or to any)
        this way (``options``: :class:`~pushgate.fakes.state.ScriptOptions`). ``reason``
        None takes the usual one for ``status`` (400 InvalidData, 401 AccessTokenExpired,
        413 MessageTooLarge, 429 MaxRateExceeded, 500 InternalServerError, 503 none);
        ``""`` sends an empty body. ``status`` None (or 200) with a ``delay`` is a slow
        success."""
        chosen = _DEFAULT_REASONS.get(status or 200, "") if reason is None else reason
        self._scripts.add(_Script(status=status, token=token, reason=chosen, **options), times)

    def reset(self) -> None:
        """Forget records, scripts, registrations and rate-limit use (not clients)."""
        super().reset()
        if self.rate_limit is not None:
            self.rate_limit.clear()
        with self._lock:
            self._registrations.clear()

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        return 100

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        if request.path.partition("?")[0] in TOKEN_PATHS:
            return self._token(request, now)
        attempt = _Attempt()
        error = self._check(request, attempt, now)
        script = self._scripts.take(attempt.registration_id or "") if error is None else None
        if script is not None:
            dropped = self._record(request, attempt, now, None, "scripted: dropped")
            if await self._delay_or_drop(script, request, dropped):
                return None
            if script.status is not None and script.status != 200:
                error = _Error(script.status, script.reason, script.retry_after)
            if script.goaway:
                request.connection.goaway()
        headers = [("content-type", "application/json"), ("x-amzn-requestid", str(uuid.uuid4()))]
        if error is not None:
            if error.retry_after is not None:
                headers.append(("retry-after", retry_after_header(error.retry_after)))
            self._records.add(self._record(request, attempt, now, error.status, error.reason))
            return Response(error.status, headers, error.body())
        self._records.add(self._record(request, attempt, now, 200, None))
        body = request.json()
        headers.append(("x-amzn-data-md5", data_checksum(body["data"])))
        current = attempt.new_registration_id or attempt.registration_id
        return Response(200, headers, json.dumps({"registrationID": current}).encode())

    # The token endpoint (sec. 3.1)

    def _token(self, request: Request, now: float) -> Response:
        form = parse_form(request)
        record, response = answer_grant(
            request,
            form,
            check_grant(request, form, self.issuer, scope=SCOPE, fields=_TOKEN_FIELDS),
            self.issuer,
            now=now,
            lifetime=self.access_token_lifetime,
            headers=[
                ("content-type", "application/json;charset=UTF-8"),
                ("x-amzn-requestid", str(uuid.uuid4())),
            ],
            granted={"scope": SCOPE, "token_type": "bearer"},
        )
        self._token_requests.add(record)
        return response

    # The send checks, in order

    def _check(self, request: Request, attempt: _Attempt, now: float) -> _Error | None:
        match = _SEND_PATH.fullmatch(request.path.partition("?")[0])
        if match is None:
            return _Error(404, "NotFound")
        attempt.registration_id = urllib.parse.unquote(match[1])
        if request.method != "POST":
            return _Error(405, "MethodNotAllowed")
        token = bearer(request.header("authorization"))
        grant = self.issuer.lookup(token) if token is not None else None
        if grant is None or grant.expires_at <= now:
            return _Error(401, "AccessTokenExpired")
        attempt.client_id = grant.client_id
        if (
            request.header("x-amzn-type-version") != TYPE_VERSION
            or request.header("x-amzn-accept-type") != ACCEPT_TYPE
            or request.media_type != "application/json"
            or "application/json" not in (request.header("accept") or "")
        ):
            return _Error(400, "InvalidType")
        return (
            self._check_body(request.json())
            or self._check_registration(attempt)
            or self._check_rate(attempt, now)
        )

    def _check_body(self, body: Any) -> _Error | None:
        if not isinstance(body, dict) or (self.strict and set(body) - _FIELDS):
            return _Error(400, "InvalidData")
        data = body.get("data")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return _Error(400, "InvalidData")
        if "notification" in body and not isinstance(body["notification"], dict):
            return _Error(400, "InvalidData")
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_DATA:
            return _Error(413, "MessageTooLarge")
        key = body.get("consolidationKey")
        if "consolidationKey" in body and (
            not isinstance(key, str) or len(key) > MAX_CONSOLIDATION_KEY
        ):
            return _Error(400, "InvalidConsolidationKey")
        expires = body.get("expiresAfter")
        if "expiresAfter" in body and (
            isinstance(expires, bool)
            or not isinstance(expires, int)
            or not 1 <= expires <= MAX_EXPIRES_AFTER
        ):
            return _Error(400, "InvalidExpiration")
        if "md5" in body and body["md5"] != data_checksum(data):
            return _Error(400, "InvalidChecksum")
        return None

    def _check_registration(self, attempt: _Attempt) -> _Error | None:
        registration_id = attempt.registration_id or ""
        if not self.registration_pattern.fullmatch(registration_id):
            return _Error(400, "InvalidRegistrationId")
        with self._lock:
            known = self._registrations.get(registration_id)
        if known is None:
            if self.accept_unknown_registrations:
                return None
            return _Error(400, "InvalidRegistrationId")
        state, rotated_to = known
        if state == "invalid":
            return _Error(400, "InvalidRegistrationId")
        if state == "unregistered":
            return _Error(400, "Unregistered")
        attempt.new_registration_id = rotated_to
        return None

    def _check_rate(self, attempt: _Attempt, now: float) -> _Error | None:
        if self.rate_limit is None or attempt.registration_id is None:
            return None
        wait = self.rate_limit.retry_after(attempt.registration_id, now)
        return _Error(429, "MaxRateExceeded", wait) if wait > 0 else None

    def _record(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        status: int | None,
        reason: str | None,
    ) -> ReceivedAdmMessage:
        return ReceivedAdmMessage(
            registration_id=attempt.registration_id,
            client_id=attempt.client_id,
            headers=request.header_map(),
            body=request.json(),
            raw=request.body,
            status=status,
            reason=reason,
            connection_id=request.connection.id,
            stream_id=request.stream_id,
            received_at=now,
            new_registration_id=attempt.new_registration_id if status == 200 else None,
        )
