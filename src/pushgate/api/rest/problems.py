"""Errors of the REST API as RFC 9457 problem documents (``application/problem+json``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pushgate.domain.errors import SnsError

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """An error answered as ``{"type", "title", "status", "detail"}``."""

    def __init__(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}


def _problem(
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


async def problem_response(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return _problem(exc.status, exc.title, exc.detail, exc.headers)


async def domain_error_response(_request: Request, exc: Exception) -> JSONResponse:
    """A domain error (SNS's error classes) as a problem: its status, its code as title."""
    assert isinstance(exc, SnsError)
    return _problem(exc.status, exc.code, exc.message)


async def validation_error_response(_request: Request, exc: Exception) -> JSONResponse:
    """A body or parameter FastAPI could not validate: 400 with each error's place."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
    return _problem(400, "Bad Request", detail, errors=errors)
