"""Provider clients and their HTTP/2 transport, against the strict fakes over real sockets."""

from __future__ import annotations

import secrets

from pushgate.providers.transport import Response

TEAM = "TEAM123456"
BUNDLE = "com.example.app"
PAYLOAD = b'{"aps":{"alert":"hello"}}'


def apns_token() -> str:
    """A fresh 64-hex-digit device token."""
    return secrets.token_hex(32)


def fcm_token() -> str:
    """A fresh registration token the FCM fake accepts."""
    return "fcm-" + secrets.token_urlsafe(40)


def response(
    status: int,
    body: bytes = b"",
    *,
    retry_after: float | None = None,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A transport response as the thread would build it."""
    lines = tuple(f"{name}: {value}\r\n".encode() for name, value in (headers or {}).items())
    return Response(status, lines, body, error, 0.002, retry_after)
