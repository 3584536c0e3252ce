"""The ADM notification for a message: not built yet."""

from __future__ import annotations

from collections.abc import Mapping

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import PayloadError
from pushgate.providers.notifications import AdmNotification


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> AdmNotification:
    raise PayloadError("Delivery to ADM endpoints is not supported")
