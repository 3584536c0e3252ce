"""Which hosts a device-supplied URL may point at: the guard against server-side request
forgery for WNS channel URIs and Web Push endpoints (specs/providers.md 4.2, 6.1).

A device, not an operator, chooses those URLs, so pushgate never requests one whose
scheme is not https or whose host is not on the allow-list. An allow-list entry is a host
name (``fcm.googleapis.com``), a suffix wildcard (``*.notify.windows.com`` matches any
subdomain, not the bare domain) and may carry a port (``127.0.0.1:4610``); without a
port, only the scheme's default port matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

WNS_HOSTS = ("*.notify.windows.com",)
MPNS_HOSTS = ("*.notify.live.net",)
WEBPUSH_HOSTS = (
    "fcm.googleapis.com",
    "*.push.services.mozilla.com",
    "web.push.apple.com",
    "*.push.apple.com",
    "*.notify.windows.com",
)


@dataclass(frozen=True)
class DeviceHosts:
    """The allow-lists of the platforms whose device tokens are URLs."""

    wns: tuple[str, ...] = WNS_HOSTS
    mpns: tuple[str, ...] = MPNS_HOSTS
    webpush: tuple[str, ...] = WEBPUSH_HOSTS

    @classmethod
    def from_settings(cls, wns: str, mpns: str, webpush: str) -> DeviceHosts:
        return cls(parse_allow_list(wns), parse_allow_list(mpns), parse_allow_list(webpush))


def parse_allow_list(value: str | Iterable[str]) -> tuple[str, ...]:
    """Entries from a comma-separated setting (or any iterable), lower-cased, blanks dropped."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip().lower() for item in items if item.strip())


def refusal(url: str, allowed: Iterable[str], schemes: tuple[str, ...] = ("https",)) -> str | None:
    """Why ``url`` must not be requested, or None when it may be. ``schemes`` other than
    https are for MPNS, whose unauthenticated channels were plain http."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        default_port = 80 if parts.scheme == "http" else 443
        port = parts.port or default_port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in schemes:
        return f"not an {' or '.join(schemes)} URL"
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL carries credentials"
    for entry in allowed:
        name, _, entry_port = entry.partition(":")
        if (int(entry_port) if entry_port.isdigit() else default_port) != port:
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]) and host != name[2:]:
                return None
        elif host == name:
            return None
    return f"host {host}:{port} is not on the allow-list"
