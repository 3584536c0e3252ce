"""``GET /v1/messages/{id}``: the delivery status of a published message."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from pushgate.api.rest.auth import require_access_key
from pushgate.api.rest.problems import Problem
from pushgate.domain import message_status

router = APIRouter(prefix="/v1", dependencies=[Depends(require_access_key)])


@router.get("/messages/{message_id}", summary="Delivery status of a message")
async def get_message(
    request: Request,
    message_id: str,
    after: Annotated[int, Query(ge=0, description="the `next` cursor of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = message_status.PAGE_SIZE,
) -> dict[str, Any]:
    """Counts of the message's deliveries by state, and one page of deliveries."""
    status = await message_status.get(
        request.app.state.runtime, message_id, after=after, limit=limit
    )
    if status is None:
        raise Problem(404, "Not Found", f"No message {message_id}")
    return status
