"""Platform names: what CreatePlatformApplication accepts and how each one is treated."""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    """The platforms of Amazon SNS mobile push (the ``Platform`` parameter), and two that
    SNS lacks: ``WEBPUSH`` (browsers, RFC 8030/8291/8292) and ``HMS`` (Huawei Push Kit)."""

    APNS = "APNS"
    APNS_SANDBOX = "APNS_SANDBOX"
    APNS_VOIP = "APNS_VOIP"
    APNS_VOIP_SANDBOX = "APNS_VOIP_SANDBOX"
    MACOS = "MACOS"
    MACOS_SANDBOX = "MACOS_SANDBOX"
    GCM = "GCM"
    ADM = "ADM"
    WNS = "WNS"
    MPNS = "MPNS"
    BAIDU = "BAIDU"
    WEBPUSH = "WEBPUSH"
    HMS = "HMS"


APPLE_PLATFORMS = frozenset(
    {
        Platform.APNS,
        Platform.APNS_SANDBOX,
        Platform.APNS_VOIP,
        Platform.APNS_VOIP_SANDBOX,
        Platform.MACOS,
        Platform.MACOS_SANDBOX,
    }
)

# SNS's legacy spelling of Baidu is accepted and kept in the ARN as given.
_ALIASES = {"Baidu": Platform.BAIDU}


def parse_platform(value: str) -> Platform | None:
    """The platform named by ``value`` (exact spelling, as SNS), or None when unsupported."""
    if value in _ALIASES:
        return _ALIASES[value]
    try:
        return Platform(value)
    except ValueError:
        return None
