"""The WNS notification for a message: not built yet."""

from __future__ import annotations

from collections.abc import Mapping

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import PayloadError
from pushgate.providers.notifications import WnsNotification


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> WnsNotification:
    raise PayloadError("Delivery to WNS endpoints is not supported")
