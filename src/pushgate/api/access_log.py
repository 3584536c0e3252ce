"""One structured log line per request: method, path, SNS action, status, duration."""

from __future__ import annotations

import logging
import time
from typing import Any

from pushgate.api.sns.endpoint import ACTION_KEY

log = logging.getLogger("pushgate.access")


class AccessLog:
    """Pure ASGI middleware; logs no bodies, headers or query strings (they carry secrets)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "action": "http_request",
                    "method": scope["method"],
                    "path": scope["path"],
                    "sns_action": scope.get(ACTION_KEY),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
