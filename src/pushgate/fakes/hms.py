"""A strict fake of Huawei HMS Push Kit and its OAuth token endpoint (specs/providers.md
sec. 7, 10.7).

One HTTP/2 + TLS port serves ``POST /oauth2/v3/token`` and ``POST
/v1/{appId}/messages:send``. Business outcomes are HTTP 200 with ``{"code", "msg",
"requestId"}``. A send is checked in this fixed order, the first failure being the answer:

1. path (``404``), then method (``405``);
2. ``Authorization: Bearer``: unknown, missing or issued to another app → HTTP 401
   ``80200001``; expired → HTTP 401 ``80200003``;
3. ``Content-Type`` JSON → else ``80100001`` (the fake's choice; HMS documents none);
4. body: a JSON object of ``message`` and an optional boolean ``validate_only``; exactly
   one of ``token`` (an array of strings), ``topic``, ``condition``; ``data`` and
   ``android.data`` strings; ``notification``/``android`` objects: else ``80100003``; an
   empty token array, ``android.urgency`` not HIGH/NORMAL, ``android.ttl`` not a duration
   or above :attr:`FakeHms.max_ttl` → ``80100001``; a TTL of zero → ``80100004``;
   ``android.collapse_key`` not an integer -1 ... 100 → ``80100013``; more than 1000
   tokens → ``80300010``; the message without ``token`` above 4096 bytes of compact JSON
   → ``80300008``;
5. the app: push not enabled → ``80300002``; HIGH urgency without that permission →
   ``80300011``;
6. tokens (malformed ones are invalid): all invalid → ``80300007``; some → ``80100000``
   with ``msg`` the JSON text ``{"success", "failure", "illegal_tokens"}``;
7. the per-app rate limit, when set → HTTP 503 (flow control, empty body);
8. scripted replies (:meth:`FakeHms.script`), which replace the success of a valid send.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
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

__all__ = ["FakeHms", "ReceivedHmsMessage"]

TokenState = Literal["active", "invalid"]
TOKEN_PATH = "/oauth2/v3/token"
SUCCESS = "80000000"
PARTIAL = "80100000"
MESSAGES = {
    SUCCESS: "Success",
    "80100001": "Some request parameters are invalid",
    "80100003": "Incorrect message structure",
    "80100004": "The message expiration time is earlier than the current time",
    "80100013": "The collapse_key message field is invalid",
    "80200001": "Oauth authentication error",
    "80200003": "Oauth Token expired",
    "80300002": "The current app does not have the permission to send messages",
    "80300007": "All the tokens are invalid",
    "80300008": "The message body size exceeds the default value",
    "80300010": "The number of tokens in the message body exceeds the default value",
    "80300011": "No permission to send high-level notification messages",
    "81000001": "System internal error",
}
_SEND_PATH = re.compile(r"/v1/([^/]+)/messages:send")
_TARGETS = ("token", "topic", "condition")
_DURATION = re.compile(r"(\d+)(\.\d{1,9})?s")


@dataclass(frozen=True)
class ReceivedHmsMessage:
    """One send request as the fake saw it, and its answer (``status`` None: dropped)."""

    app_id: str
    tokens: tuple[str, ...]
    client_id: str | None  # whose access token authorised it
    headers: dict[str, str]  # lower-case names, pseudo-headers included; first value wins
    body: Any  # the parsed JSON body, or None
    raw: bytes
    status: int | None
    code: str | None  # the business code answered (None: an empty body or dropped)
    connection_id: int
    stream_id: int
    received_at: float
    validate_only: bool = False
    illegal_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Error:
    status: int
    code: str
    msg: str = ""
    retry_after: float | None = None

    def body(self, request_id: str) -> bytes:
        if not self.code:
            return b""
        msg = self.msg or MESSAGES.get(self.code, "Scripted error")
        return json.dumps({"code": self.code, "msg": msg, "requestId": request_id}).encode()


def _fail(code: str) -> _Error:
    return _Error(401 if code in ("80200001", "80200003") else 200, code)


@dataclass(frozen=True, kw_only=True)
class _Script(Script):
    code: str


@dataclass
class _Attempt:
    app_id: str = ""
    client_id: str | None = None
    tokens: tuple[str, ...] = ()
    validate_only: bool = False
    urgency: str = "NORMAL"
    illegal: tuple[str, ...] = ()


class FakeHms(FakeServer[ReceivedHmsMessage, _Script]):
    """HMS Push Kit and its token endpoint on one port. Public methods are safe from any
    thread. :attr:`delivered` and :meth:`wait_for` leave out ``validate_only`` sends.

    The attributes below are knobs with the documented defaults.
    """

    def __init__(self, ca: FakeCA) -> None:
        super().__init__(
            ca.server_context(("h2",)),
            H2_SETTINGS,
            lambda m: m.status == 200 and m.code in (SUCCESS, PARTIAL) and not m.validate_only,
        )
        self.token_pattern = re.compile(r"[A-Za-z0-9_\-+/=.:]{32,512}")
        self.access_token_lifetime = 3600
        self.max_tokens = 1000
        self.max_message_size = 4096
        self.max_ttl = 1296000  # 15 days [unverified]
        self.rate_limit: RateLimiter | None = None  # per app; over it: HTTP 503
        self.clock: Callable[[], float] = time.time
        self.issuer = ClientCredentialsIssuer("CF3Xl2XV6jMK")
        self._token_states: dict[str, TokenState] = {}
        self._push_disabled: set[str] = set()
        self._no_high_priority: set[str] = set()

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    # Apps and tokens

    def create_app(self) -> tuple[str, str]:
        """A new app: ``(app id, app secret)``; its OAuth client id is the app id."""
        app_id = str(100_000_000 + secrets.randbelow(900_000_000))
        app_secret = secrets.token_hex(32)
        self.issuer.register(app_id, app_secret)
        return app_id, app_secret

    def register_app(self, app_id: str, app_secret: str) -> None:
        """Accept an existing app (say, from an earlier run)."""
        self.issuer.register(app_id, app_secret)

    def disable_app(self, app_id: str) -> None:
        """Its grants get ``401 invalid_client`` and its tokens stop working."""
        self.issuer.disable(app_id)

    def set_push_enabled(self, app_id: str, enabled: bool) -> None:
        """Without push enabled, sends of the app get ``80300002``."""
        with self._lock:
            (self._push_disabled.discard if enabled else self._push_disabled.add)(app_id)

    def set_high_priority_allowed(self, app_id: str, allowed: bool) -> None:
        """Without the permission, HIGH urgency sends of the app get ``80300011``."""
        with self._lock:
            (self._no_high_priority.discard if allowed else self._no_high_priority.add)(app_id)

    def create_token(self) -> str:
        """A fresh push token the fake accepts (any well-formed token is active)."""
        return "IQAAAACy0" + secrets.token_urlsafe(96)

    def set_token_state(self, token: str, state: TokenState) -> None:
        if state not in ("active", "invalid"):
            raise ValueError(f"unknown token state {state!r}")
        with self._lock:
            self._token_states[token] = state

    def script(
        self,
        code: str = "81000001",
        status: int = 200,
        times: int | None = 1,
        token: str | None = None,
        **options: Unpack[ScriptOptions],
    ) -> None:
        """Answer the next ``times`` valid sends (whose first token is ``token``, or any)
        with HTTP ``status`` and business ``code`` (``""``: an empty body); ``options``:
        :class:`~pushgate.fakes.state.ScriptOptions`. ``code`` 80000000 with a ``delay``
        is a slow success."""
        self._scripts.add(_Script(status=status, token=token, code=code, **options), times)

    def reset(self) -> None:
        """Forget records, scripts, token states, app permissions and rate-limit use (not
        apps)."""
        super().reset()
        if self.rate_limit is not None:
            self.rate_limit.clear()
        with self._lock:
            self._token_states.clear()
            self._push_disabled.clear()
            self._no_high_priority.clear()

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        return 100

    async def handle(self, request: Request) -> Response | None:
        now = self.clock()
        if request.path.partition("?")[0] == TOKEN_PATH:
            return self._token(request, now)
        attempt = _Attempt()
        error = self._check(request, attempt, now)
        first = attempt.tokens[0] if attempt.tokens else ""
        script = self._scripts.take(first) if error is None else None
        if script is not None:
            dropped = self._record(request, attempt, now, None, None)
            if await self._delay_or_drop(script, request, dropped):
                return None
            if script.code != SUCCESS or (script.status or 200) != 200:
                error = _Error(script.status or 200, script.code, retry_after=script.retry_after)
            if script.goaway:
                request.connection.goaway()
        request_id = f"{int(now * 1000)}{secrets.randbelow(10**9):09d}"
        headers = [("content-type", "application/json;charset=UTF-8")]
        if error is None and attempt.illegal:
            msg = {
                "success": len(attempt.tokens) - len(attempt.illegal),
                "failure": len(attempt.illegal),
                "illegal_tokens": list(attempt.illegal),
            }
            error = _Error(200, PARTIAL, json.dumps(msg))
        if error is not None:
            if error.retry_after is not None:
                headers.append(("retry-after", retry_after_header(error.retry_after)))
            code = error.code or None
            self._records.add(self._record(request, attempt, now, error.status, code))
            return Response(error.status, headers, error.body(request_id))
        self._records.add(self._record(request, attempt, now, 200, SUCCESS))
        return Response(200, headers, _Error(200, SUCCESS).body(request_id))

    # The token endpoint (sec. 7.1)

    def _token(self, request: Request, now: float) -> Response:
        form = parse_form(request)
        record, response = answer_grant(
            request,
            form,
            check_grant(request, form, self.issuer),
            self.issuer,
            now=now,
            lifetime=self.access_token_lifetime,
            headers=[("content-type", "application/json;charset=UTF-8")],
            granted={"token_type": "Bearer"},
        )
        self._token_requests.add(record)
        return response

    # The send checks, in order

    def _check(self, request: Request, attempt: _Attempt, now: float) -> _Error | None:
        match = _SEND_PATH.fullmatch(request.path.partition("?")[0])
        if match is None:
            return _Error(404, "", "")
        attempt.app_id = match[1]
        if request.method != "POST":
            return _Error(405, "", "")
        token = bearer(request.header("authorization"))
        grant = self.issuer.lookup(token) if token is not None else None
        if grant is None or grant.client_id != attempt.app_id:
            return _fail("80200001")
        attempt.client_id = grant.client_id
        if grant.expires_at <= now:
            return _fail("80200003")
        if request.media_type != "application/json":
            return _fail("80100001")
        return (
            self._check_body(request.json(), attempt)
            or self._check_app(attempt)
            or self._check_tokens(attempt)
            or self._check_rate(attempt, now)
        )

    def _check_body(self, body: Any, attempt: _Attempt) -> _Error | None:
        if not isinstance(body, dict) or set(body) - {"message", "validate_only"}:
            return _fail("80100003")
        message = body.get("message")
        if not isinstance(message, dict):
            return _fail("80100003")
        validate_only = body.get("validate_only", False)
        if not isinstance(validate_only, bool):
            return _fail("80100001")
        attempt.validate_only = validate_only
        if sum(target in message for target in _TARGETS) != 1:
            return _fail("80100003")
        tokens = message.get("token")
        if "token" in message:
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                return _fail("80100003")
            attempt.tokens = tuple(tokens)
            if not tokens:
                return _fail("80100001")
            if len(tokens) > self.max_tokens:
                return _fail("80300010")
        elif not all(isinstance(message.get(t, ""), str) for t in _TARGETS):
            return _fail("80100003")
        if not isinstance(message.get("data", ""), str) or not isinstance(
            message.get("notification", {}), dict
        ):
            return _fail("80100003")
        android = message.get("android", {})
        if not isinstance(android, dict) or not isinstance(android.get("data", ""), str):
            return _fail("80100003")
        error = self._check_android(android)
        if error is not None:
            return error
        attempt.urgency = android.get("urgency", "NORMAL")
        rest = {name: value for name, value in message.items() if name != "token"}
        size = len(json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode())
        return _fail("80300008") if size > self.max_message_size else None

    def _check_android(self, android: dict[str, Any]) -> _Error | None:
        if android.get("urgency", "NORMAL") not in ("HIGH", "NORMAL"):
            return _fail("80100001")
        collapse_key = android.get("collapse_key", -1)
        if (
            isinstance(collapse_key, bool)
            or not isinstance(collapse_key, int)
            or not -1 <= collapse_key <= 100
        ):
            return _fail("80100013")
        if "ttl" in android:
            ttl = android["ttl"]
            match = _DURATION.fullmatch(ttl) if isinstance(ttl, str) else None
            if match is None:
                return _fail("80100001")
            seconds = int(match[1]) + float(match[2] or 0)
            if seconds <= 0:
                return _fail("80100004")
            if seconds > self.max_ttl:
                return _fail("80100001")
        return None

    def _check_app(self, attempt: _Attempt) -> _Error | None:
        with self._lock:
            disabled = attempt.app_id in self._push_disabled
            no_high = attempt.app_id in self._no_high_priority
        if disabled:
            return _fail("80300002")
        if no_high and attempt.urgency == "HIGH":
            return _fail("80300011")
        return None

    def _check_tokens(self, attempt: _Attempt) -> _Error | None:
        if not attempt.tokens:
            return None
        with self._lock:
            states = [self._token_states.get(token, "active") for token in attempt.tokens]
        illegal = tuple(
            token
            for token, state in zip(attempt.tokens, states, strict=True)
            if state == "invalid" or not self.token_pattern.fullmatch(token)
        )
        if len(illegal) == len(attempt.tokens):
            return _fail("80300007")
        attempt.illegal = illegal
        return None

    def _check_rate(self, attempt: _Attempt, now: float) -> _Error | None:
        if self.rate_limit is None:
            return None
        wait = self.rate_limit.retry_after(attempt.app_id, now)
        return _Error(503, "") if wait > 0 else None

    def _record(
        self,
        request: Request,
        attempt: _Attempt,
        now: float,
        status: int | None,
        code: str | None,
    ) -> ReceivedHmsMessage:
        return ReceivedHmsMessage(
            app_id=attempt.app_id,
            tokens=attempt.tokens,
            client_id=attempt.client_id,
            headers=request.header_map(),
            body=request.json(),
            raw=request.body,
            status=status,
            code=code,
            connection_id=request.connection.id,
            stream_id=request.stream_id,
            received_at=now,
            validate_only=attempt.validate_only,
            illegal_tokens=attempt.illegal,
        )
