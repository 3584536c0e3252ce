"""The HMS notification for a message: not built yet."""

from __future__ import annotations

from collections.abc import Mapping

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import PayloadError
from pushgate.providers.notifications import HmsNotification


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> HmsNotification:
    raise PayloadError("Delivery to HMS endpoints is not supported")
