"""Errors of the REST API as RFC 9457 problem documents (``application/problem+json``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """An error answered as ``{"type", "title", "status", "detail"}``."""

    def __init__(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}


async def problem_response(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return JSONResponse(
        {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail},
        status_code=exc.status,
        media_type=PROBLEM_TYPE,
        headers=exc.headers,
    )
