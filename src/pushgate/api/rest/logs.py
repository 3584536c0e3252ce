"""``GET /v1/logs``: delivery status logs (SNS's SuccessFeedbackRoleArn and
FailureFeedbackRoleArn records), oldest first, a page at a time.

Callers hold an access key, the same power as the SNS API, so tokens are shown in full.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from pushgate.api.rest.auth import require_access_key
from pushgate.api.rest.problems import Problem
from pushgate.domain import delivery_logs

router = APIRouter(prefix="/v1", dependencies=[Depends(require_access_key)])


def _since(value: str | None) -> float | None:
    """An ISO 8601 time (UTC when it has no offset) or epoch seconds."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(
            400, "Bad Request", f"since: not an ISO 8601 time or epoch seconds: {value!r}"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC).timestamp()
    return moment.timestamp()


@router.get("/logs", summary="Delivery status logs")
async def get_logs(
    request: Request,
    application: Annotated[str | None, Query(description="platform application ARN")] = None,
    status: Annotated[Literal["SUCCESS", "FAILURE"] | None, Query()] = None,
    endpoint: Annotated[str | None, Query(description="endpoint ARN (destination)")] = None,
    message: Annotated[str | None, Query(description="MessageId")] = None,
    since: Annotated[
        str | None, Query(description="ISO 8601 time or epoch seconds: records logged since")
    ] = None,
    after: Annotated[int, Query(ge=0, description="the `next` cursor of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = delivery_logs.PAGE_SIZE,
) -> dict[str, Any]:
    """Records in SNS's shape, each with its ``id``; ``next`` is the cursor of the next page."""
    items, cursor = await delivery_logs.page(
        request.app.state.runtime,
        delivery_logs.LogFilter(
            application_arn=application,
            status=status,
            destination=endpoint,
            message_id=message,
            since=_since(since),
            after=after,
            limit=limit,
        ),
    )
    return {"items": items, "next": cursor}
