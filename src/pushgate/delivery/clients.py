"""Provider clients for platform applications, built from their stored credentials.

One client per application, rebuilt when the application changes (new credentials), all
sharing one HTTP/2 transport. This is where SNS's overloaded PlatformPrincipal /
PlatformCredential pair (sns-api.md sec. 4.1) turns into provider credentials.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pushgate.domain.applications import stored_credentials
from pushgate.domain.platforms import APPLE_PLATFORMS, Platform, parse_platform
from pushgate.domain.runtime import Runtime
from pushgate.providers.adm import AdmClient
from pushgate.providers.apns import ApnsCertificateAuth, ApnsClient, ApnsTokenAuth
from pushgate.providers.baidu import BaiduClient
from pushgate.providers.fcm import FcmClient
from pushgate.providers.hms import HmsClient
from pushgate.providers.mpns import MpnsClient
from pushgate.providers.notifications import Notification
from pushgate.providers.outcomes import SendResult
from pushgate.providers.transport import Http2Transport
from pushgate.providers.webpush import WebPushClient
from pushgate.providers.wns import WnsClient
from pushgate.settings import Settings
from pushgate.store.applications import ApplicationRow


class ProviderClient(Protocol):
    async def send_many(
        self, items: Sequence[tuple[str, Notification]], ids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Send; ``ids`` are per-item request ids that stay the same on every attempt."""
        ...

    async def close(self) -> None: ...


class Unsupported(Exception):
    """The application cannot deliver: a platform not implemented yet, or credentials of a
    kind the provider no longer accepts. The reason is recorded on its deliveries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Entry:
    updated_at: datetime | None
    client: ProviderClient | None
    error: Unsupported | None


class ClientRegistry:
    def __init__(self, rt: Runtime, settings: Settings) -> None:
        self._rt = rt
        self._settings = settings
        self.transport = Http2Transport(ca_file=settings.provider_ca_file)
        self._clients: dict[int, _Entry] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def client_for(self, app: ApplicationRow) -> ProviderClient:
        """The client of ``app``; raises :class:`Unsupported` when it cannot deliver."""
        entry = self._clients.get(app.id)
        if entry is None or entry.updated_at != app.updated_at:
            try:
                entry = _Entry(app.updated_at, self._build(app), None)
            except Unsupported as exc:
                entry = _Entry(app.updated_at, None, exc)
            self._clients[app.id] = entry
        if entry.error is not None:
            raise entry.error
        assert entry.client is not None
        return entry.client

    def _build(self, app: ApplicationRow) -> ProviderClient:
        platform = parse_platform(app.platform)
        creds = stored_credentials(self._rt, app)
        principal = creds.get("PlatformPrincipal", "")
        credential = creds.get("PlatformCredential", "")
        method = app.attributes.get("AuthenticationMethod")
        if platform in APPLE_PLATFORMS:
            assert platform is not None
            sandbox = platform.value.endswith("_SANDBOX")
            url = self._settings.apns_sandbox_url if sandbox else self._settings.apns_url
            bundle_id = app.attributes.get("ApplePlatformBundleID") or None
            if method == "Token":
                team_id = app.attributes.get("ApplePlatformTeamID", "")
                auth: ApnsTokenAuth | ApnsCertificateAuth = ApnsTokenAuth(
                    key_pem=credential, key_id=principal, team_id=team_id
                )
            else:
                auth = ApnsCertificateAuth(certificate_pem=principal, private_key_pem=credential)
            return ApnsClient(url, auth, self.transport, default_topic=bundle_id)
        if platform is Platform.GCM:
            if method != "Token":
                raise Unsupported(
                    "LegacyServerKey: Google shut down the legacy FCM API that server keys "
                    "authenticate against; set PlatformCredential to a service-account JSON"
                )
            return FcmClient(self._settings.fcm_url, json.loads(credential), self.transport)
        s = self._settings
        if platform is Platform.ADM:
            return AdmClient(s.adm_url, s.adm_token_url, principal, credential, self.transport)
        if platform is Platform.HMS:
            return HmsClient(s.hms_url, s.hms_token_url, principal, credential, self.transport)
        hosts = self._rt.device_hosts
        if platform is Platform.WNS:
            return WnsClient(s.wns_token_url, principal, credential, self.transport, hosts.wns)
        if platform is Platform.MPNS:
            return MpnsClient(
                self.transport,
                hosts.mpns,
                certificate_pem=principal or None,
                private_key_pem=credential or None,
            )
        if platform is Platform.BAIDU:
            return BaiduClient(s.baidu_url, principal, credential, self.transport)
        assert platform is Platform.WEBPUSH
        return WebPushClient(credential, principal, self.transport, hosts.webpush)

    def replace_transport(self) -> None:
        """Start over with a new transport and new clients: the last resort when sends
        stop coming back. The old transport is closed in the background."""
        old = self.transport
        self.transport = Http2Transport(ca_file=self._settings.provider_ca_file)
        self._clients.clear()
        task = asyncio.create_task(asyncio.wait_for(old.close(), 30))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        await asyncio.gather(*self._closing, return_exceptions=True)
        for entry in self._clients.values():
            if entry.client is not None:
                await entry.client.close()
        self._clients.clear()
        await self.transport.close()
