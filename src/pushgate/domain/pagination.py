"""Opaque ``NextToken`` values for keyset pagination (100 items a page, as SNS)."""

from __future__ import annotations

import base64
import binascii

from pushgate.domain.errors import InvalidParameter

PAGE_SIZE = 100


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode()


def decode(token: str | None) -> int:
    """The id after which the next page starts (0 for the first page)."""
    if token is None:
        return 0
    try:
        version, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if version == "v1" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidParameter("Invalid parameter: NextToken")


def next_token(ids: list[int]) -> str | None:
    """A token for the page after ``ids`` (fetched with one extra row), or None."""
    return encode(ids[PAGE_SIZE - 1]) if len(ids) > PAGE_SIZE else None
