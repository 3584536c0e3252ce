"""A strict fake of FCM HTTP v1 and its OAuth token endpoint (specs/providers.md sec. 2, 10.2).

One HTTP/2 + TLS port serves ``POST /token`` (see :mod:`pushgate.fakes.fcm_oauth`) and
``POST /v1/projects/{project}/messages:send``. A send request is checked in this fixed
order, the first failure being the answer:

1. transport, method and path: ``:authority`` present, ``404`` for other paths, ``405``;
2. ``Authorization: Bearer``: ``401 UNAUTHENTICATED`` (no FcmError detail), then
   ``403 PERMISSION_DENIED`` for another project or a project with the API disabled;
3. ``Content-Type`` JSON;
4. body: proto3 JSON schema, then FCM's message rules (:mod:`pushgate.fakes.fcm_message`);
5. the device token: format, then state (:meth:`FakeFcm.set_token_state`);
6. quotas: per project (600 000/min) and, when set, per device -> ``429 QUOTA_EXCEEDED``;
7. scripted replies (:meth:`FakeFcm.script`), which replace the success of a valid request.

Errors are google.rpc.Status envelopes as Google sends them (indented JSON).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Unpack

from pushgate.fakes import fcm_message
from pushgate.fakes.base import H2_SETTINGS, FakeServer
from pushgate.fakes.client_credentials import bearer, parse_form
from pushgate.fakes.fcm_oauth import GOOGLE_TOKEN_URI, TokenIssuer
from pushgate.fakes.h2server import Connection, Request, Response
from pushgate.fakes.state import RateLimiter, Script, ScriptOptions, retry_after_header
from pushgate.fakes.tls import FakeCA

__all__ = ["FakeFcm", "ReceivedMessage"]

TokenState = Literal["active", "unregistered", "invalid", "other_project", "apns_auth_error"]
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Google's standard message per status, and the FcmError code a script gets by default.
_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "SenderId mismatch",
    404: "Requested entity was not found.",
    429: "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per "
    "minute' of service 'fcm.googleapis.com'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
_MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_DEFAULT_CODES = {
    400: "INVALID_ARGUMENT",
    403: "SENDER_ID_MISMATCH",
    404: "UNREGISTERED",
    429: "QUOTA_EXCEEDED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_INVALID_TOKEN = "The registration token is not a valid FCM registration token"
_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True)
class ReceivedMessage:
    """One send request as the fake saw it, and its answer (``status`` None: dropped)."""

    project: str
    token: str | None  # the message's target token, if it had one
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    body: Any  # the parsed JSON body, or None
    raw: bytes
    status: int | None
    error_code: str | None  # FcmError errorCode, else the canonical status on errors
    connection_id: int
    stream_id: int
    received_at: float
    message_id: str | None = None
    validate_only: bool = False
    detail: str = ""  # the error message that was sent


@dataclass(frozen=True)
class _Error:
    status: int
    message: str
    error_code: str | None = None  # FcmError detail
    field: str | None = None  # BadRequest field violation
    violation: str | None = None
    retry_after: float | None = None

    def body(self) -> bytes:
        details: list[dict[str, Any]] = []
        if self.error_code:
            details.append({"@type": _FCM_ERROR, "errorCode": self.error_code})
        if self.violation is not None:
            violation = {"description": self.violation}
            if self.field:
                violation = {"field": self.field, **violation}
            details.append({"@type": _BAD_REQUEST, "fieldViolations": [violation]})
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "status": STATUS_NAMES.get(self.status, "UNKNOWN"),
        }
        if details:
            error["details"] = details
        return json.dumps({"error": error}, indent=2).encode()


def _violation(violation: fcm_message.Violation) -> _Error:
    code = "INVALID_ARGUMENT" if violation.fcm_error else None
    message = violation.description
    return _Error(400, message, code, violation.field, violation.description)


_TOKEN_STATES: dict[str, _Error | None] = {
    "active": None,
    "unregistered": _Error(404, _MESSAGES[404], "UNREGISTERED"),
    "invalid": _Error(400, _INVALID_TOKEN, "INVALID_ARGUMENT", "message.token", _INVALID_TOKEN),
    "other_project": _Error(403, "SenderId mismatch", "SENDER_ID_MISMATCH"),
    "apns_auth_error": _Error(
        401, "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR"
    ),
}


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    error_code: str | None


@dataclass
class _Attempt:
    project: str = ""
    token: str | None = None
    validate_only: bool = False


class FakeFcm(FakeServer[ReceivedMessage, _Script]):
    """FCM v1 and its token endpoint on one port. Public methods are safe from any thread.

    The attributes below are knobs with the documented defaults. :attr:`delivered` and
    :meth:`wait_for` leave out ``validate_only`` messages.
    """

    def __init__(self, ca: FakeCA) -> None:
        super().__init__(
            ca.server_context(("h2",)),
            H2_SETTINGS,
            lambda message: message.status == 200 and not message.validate_only,
        )
        self.token_pattern = re.compile(r"[A-Za-z0-9_:\-]{20,4096}")
        self.access_token_lifetime = 3599
        self.clock_skew = 60.0
        self.max_message_size = 4096
        self.max_topic_message_size = 2048
        self.project_quota: RateLimiter | None = RateLimiter(600_000, 60.0)
        self.device_quota: RateLimiter | None = None  # ~240/min is reported (sec. 2.6)
        self.clock: Callable[[], float] = time.time
        self.issuer = TokenIssuer()
        self._token_states: dict[str, TokenState] = {}
        self._api_disabled: set[str] = set()

    # Serving

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    # Credentials and projects

    def create_service_account(self, project_id: str = "my-project") -> dict[str, str]:
        """A service-account JSON dict for ``project_id``, its ``token_uri`` this fake's."""
        return self.issuer.create_service_account(project_id, self.token_uri)

    def register_service_account(self, info: Mapping[str, str]) -> None:
        """Accept tokens for an existing service-account JSON (say, from an earlier run)."""
        self.issuer.register(info)

    def disable_service_account(self, client_email: str) -> None:
        self.issuer.disable(client_email)

    def set_api_enabled(self, project_id: str, enabled: bool) -> None:
        """With the FCM API disabled, sends to the project get ``403 PERMISSION_DENIED``."""
        with self._lock:
            (self._api_disabled.discard if enabled else self._api_disabled.add)(project_id)

    # Scripting

    def set_token_state(self, token: str, state: TokenState) -> None:
        if state not in _TOKEN_STATES:
            raise ValueError(f"unknown token state {state!r}")
        with self._lock:
            self._token_states[token] = state

    def script(
        self,
        status: int | None = 404,
        error_code: str | None = None,
        times: int | None = 1,
        token: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid sends (to ``token``, or to any) this way
        (``options``: :class:`~pushgate.fakes.state.ScriptOptions`).

        ``error_code`` None takes the usual FcmError code for ``status`` (404 UNREGISTERED,
        429 QUOTA_EXCEEDED, 500 INTERNAL, 503 UNAVAILABLE, 403 SENDER_ID_MISMATCH, 400
        INVALID_ARGUMENT; none for 401); ``""`` sends no FcmError detail. ``status`` None
        (or 200) with a ``delay`` is a slow success.
        """
        default = _DEFAULT_CODES.get(status or 200)
        code = default if error_code is None else error_code or None
        self._scripts.add(_Script(status=status, token=token, error_code=code, **options), times)

    def reset(self) -> None:
        """Forget records, scripts, token states, disabled APIs and quota use (not accounts)."""
        super().reset()
        for limiter in (self.project_quota, self.device_quota):
            if limiter is not None:
                limiter.clear()
        with self._lock:
            self._token_states.clear()
            self._api_disabled.clear()

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        return 100  # FCM allows about 100 concurrent streams (sec. 2.1)

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        if request.path.partition("?")[0] == "/token":
            return self._token(request, now)
        attempt = _Attempt()
        error = self._check(request, attempt, now)
        script = self._scripts.take(attempt.token or "") if error is None else None
        if script is not None:
            dropped = self._record(request, attempt, now, None, None, "scripted: dropped")
            if await self._delay_or_drop(script, request, dropped):
                return None
            if script.status is not None and script.status != 200:
                message = _MESSAGES.get(script.status, "Scripted error.")
                if script.status == 403 and script.error_code != "SENDER_ID_MISMATCH":
                    message = "The caller does not have permission"
                error = _Error(
                    script.status, message, script.error_code, None, None, script.retry_after
                )
            if script.goaway:
                request.connection.goaway()
        headers = [("content-type", "application/json; charset=UTF-8")]
        if error is not None:
            if error.retry_after is not None:
                headers.append(("retry-after", retry_after_header(error.retry_after)))
            code = error.error_code or STATUS_NAMES.get(error.status, "UNKNOWN")
            self._records.add(
                self._record(request, attempt, now, error.status, code, error.message)
            )
            return Response(error.status, headers, error.body())
        if attempt.validate_only:
            message_id = "fake_message_id"
        else:
            message_id = f"0:{int(now * 1000)}%{secrets.token_hex(8)}"
        self._records.add(self._record(request, attempt, now, 200, None, "", message_id))
        name = f"projects/{attempt.project}/messages/{message_id}"
        return Response(200, headers, json.dumps({"name": name}, indent=2).encode())

    def _token(self, request: Request, now: float) -> Response:
        headers = [("content-type", "application/json; charset=utf-8")]
        if request.method != "POST":
            body = {"error": "invalid_request", "error_description": "Method not allowed."}
            return Response(405, headers, json.dumps(body, indent=2).encode())
        record, answer = self.issuer.exchange(
            parse_form(request),
            audiences={self.token_uri, GOOGLE_TOKEN_URI},
            now=now,
            lifetime=self.access_token_lifetime,
            skew=self.clock_skew,
            connection_id=request.connection.id,
        )
        self._token_requests.add(record)
        return Response(record.status, headers, answer)

    # The checks, in order

    def _check(self, request: Request, attempt: _Attempt, now: float) -> _Error | None:
        if request.header(":authority") is None:
            return _Error(400, "HTTP/2 requests need :authority.")
        match = _SEND_PATH.fullmatch(request.path.partition("?")[0])
        if match is None:
            return _Error(404, _MESSAGES[404])
        attempt.project = match[1]
        if request.method != "POST":
            return _Error(405, f"Method {request.method} is not allowed; use POST.")
        error = self._check_auth(request.header("authorization"), attempt.project, now)
        if error is not None:
            return error
        if request.media_type != "application/json":
            return _Error(400, "Invalid JSON payload received. Content-Type must be JSON.")
        parsed = fcm_message.parse_request(request.body)
        if isinstance(parsed, fcm_message.Violation):
            return _violation(parsed)
        attempt.validate_only = bool(parsed.get("validate_only", False))
        message = parsed.get("message")
        if message is None:
            return _Error(
                400,
                "Request must contain a message.",
                "INVALID_ARGUMENT",
                "message",
                "message is required",
            )
        attempt.token = message.get("token")
        violation = fcm_message.message_problem(
            message, max_size=self.max_message_size, max_topic_size=self.max_topic_message_size
        )
        if violation is not None:
            return _violation(violation)
        return self._check_token(attempt.token) or self._check_quota(attempt, now)

    def _check_auth(self, authorization: str | None, project: str, now: float) -> _Error | None:
        if authorization is None:
            return _Error(401, _MISSING_CREDENTIALS)
        value = bearer(authorization)
        token = self.issuer.lookup(value, now) if value is not None else None
        if token is None:
            return _Error(401, _MESSAGES[401])
        if token.project_id != project:
            return _Error(
                403,
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                "(or it may not exist).",
            )
        with self._lock:
            disabled = project in self._api_disabled
        if disabled:
            return _Error(
                403,
                f"Firebase Cloud Messaging API has not been used in project {project} "
                "before or it is disabled.",
            )
        return None

    def _check_token(self, token: str | None) -> _Error | None:
        if token is None:
            return None
        if not self.token_pattern.fullmatch(token):
            return _TOKEN_STATES["invalid"]
        with self._lock:
            state = self._token_states.get(token, "active")
        return _TOKEN_STATES[state]

    def _check_quota(self, attempt: _Attempt, now: float) -> _Error | None:
        for limiter, key in (
            (self.project_quota, attempt.project),
            (self.device_quota, attempt.token),
        ):
            if limiter is None or key is None:
                continue
            wait = limiter.retry_after(key, now)
            if wait > 0:
                return _Error(429, _MESSAGES[429], "QUOTA_EXCEEDED", retry_after=wait)
        return None

    def _record(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        status: int | None,
        error_code: str | None,
        detail: str,
        message_id: str | None = None,
    ) -> ReceivedMessage:
        return ReceivedMessage(
            project=attempt.project,
            token=attempt.token if isinstance(attempt.token, str) else None,
            headers=request.header_map(),
            body=request.json(),
            raw=request.body,
            status=status,
            error_code=error_code,
            connection_id=request.connection.id,
            stream_id=request.stream_id,
            received_at=now,
            message_id=message_id,
            validate_only=attempt.validate_only,
            detail=detail,
        )
