"""The SNS Query protocol at ``POST /``: authenticate, decode, dispatch, render.

A plain ASGI app rather than a FastAPI route: this is the hot path of every SDK call, and
it needs none of FastAPI's request models.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pushgate.api.sns import xml
from pushgate.api.sns.actions import ACTIONS, LINK_ACTIONS
from pushgate.api.sns.auth import SecretCache, authenticate
from pushgate.api.sns.params import Params
from pushgate.domain.arns import Scope
from pushgate.domain.errors import InternalError, InvalidAction, MissingAction, SnsError
from pushgate.domain.runtime import Runtime

log = logging.getLogger("pushgate.sns")

MAX_BODY = 2 * 1024 * 1024  # above SNS's 1 MiB message limit plus encoding overhead
ACTION_KEY = "pushgate.action"
MAX_LOGGED_ACTION = 64


class BodyTooLarge(SnsError):
    """Request entity too large"""

    code, status = "RequestEntityTooLarge", 413


class SnsQueryApp:
    """ASGI app answering the Query protocol; errors become SNS's XML envelope."""

    def __init__(self, rt: Runtime, secrets: SecretCache) -> None:
        self._rt = rt
        self._secrets = secrets

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request_id = str(uuid.uuid4())
        try:
            status, body = 200, await self._handle(scope, receive, request_id)
        except SnsError as exc:
            status = exc.status
            kind = "Sender" if exc.sender_fault else "Receiver"
            body = xml.error(kind, exc.code, exc.message, request_id)
        except Exception:
            log.exception(
                "unhandled error", extra={"action": "sns_error", "request_id": request_id}
            )
            status = 500
            body = xml.error("Receiver", InternalError.code, InternalError().message, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/xml"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-amzn-requestid", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict[str, Any], receive: Any, request_id: str) -> bytes:
        body = await _read_body(receive)
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        query = scope.get("query_string", b"").decode("latin-1")
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        params = Params.parse(body, query)
        action = params.get("Action")
        # Logged even when authentication fails, so cut to a sane length first.
        scope[ACTION_KEY] = action[:MAX_LOGGED_ACTION] if action else action
        link = LINK_ACTIONS.get(action or "")
        if scope["method"] == "GET" and link is not None and not _signed(headers, params):
            return xml.success(action or "", await link(self._rt, params), request_id)
        signed = await authenticate(
            self._secrets,
            method=scope["method"],
            raw_path=raw_path.split("?", 1)[0],
            query_string=query,
            headers=headers,
            body=body,
        )
        if not action:
            raise MissingAction()
        handler = ACTIONS.get(action)
        if handler is None:
            raise InvalidAction(f"The action {action} is not valid for this web service.")
        result = await handler(self._rt, Scope(self._rt.account_id, signed.region), params)
        return xml.success(action, result, request_id)


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _signed(headers: dict[str, str], params: Params) -> bool:
    """Whether a request carries SigV4 credentials, in a header or presigned."""
    return "authorization" in headers or params.get("X-Amz-Signature") is not None
