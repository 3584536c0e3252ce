"""The BAIDU notification for a message: not built yet."""

from __future__ import annotations

from collections.abc import Mapping

from pushgate.domain.messages import MessageAttribute
from pushgate.domain.payloads.common import PayloadError
from pushgate.providers.notifications import BaiduNotification


def build(
    text: str | None,
    body: str | None,
    attributes: Mapping[str, MessageAttribute],
    published_at: float,
) -> BaiduNotification:
    raise PayloadError("Delivery to BAIDU endpoints is not supported")
