"""What every fake provider shares: serving on one port, its records and scripts.

:class:`FakeServer` is the :class:`~pushgate.fakes.h2server.Application` part that does
not depend on the provider; each fake (:class:`~pushgate.fakes.apns.FakeApns`,
:class:`~pushgate.fakes.fcm.FakeFcm`, ...) adds its checks and answers.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import h2.events
from h2.settings import SettingCodes

from pushgate.fakes.client_credentials import TokenRequest
from pushgate.fakes.h2server import Connection, H2Server, Request, Response
from pushgate.fakes.state import Recorder, S, Scripts

R = TypeVar("R")
# The HTTP/2 SETTINGS of the fakes that do not copy their provider's own (APNs does).
H2_SETTINGS = {
    SettingCodes.MAX_FRAME_SIZE: 16384,
    SettingCodes.INITIAL_WINDOW_SIZE: 65535,
    SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
}


class FakeServer(Generic[R, S]):
    """One fake on one port, recording requests as ``R`` and taking scripts ``S``.

    ``counts`` picks the records that :attr:`delivered` lists and :meth:`wait_for` counts.
    ``protocols`` are the ALPN protocols offered (``h2``, ``http/1.1``), set on
    ``ssl_context``, which must be this fake's own. Public methods are safe from any thread.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        settings: Mapping[SettingCodes, int],
        counts: Callable[[R], bool],
        *,
        protocols: Sequence[str] = ("h2",),
        idle_goaway_data: bytes = b"",
    ) -> None:
        self._lock = threading.Lock()
        self._records: Recorder[R] = Recorder(counts)
        self._scripts: Scripts[S] = Scripts()
        self._token_requests: Recorder[TokenRequest] = Recorder(lambda r: r.status == 200)
        self._server = H2Server(
            self, ssl_context, settings, protocols=protocols, idle_goaway_data=idle_goaway_data
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    # Serving

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.start(host, port)

    async def aclose(self) -> None:
        await self._server.aclose()

    @property
    def url(self) -> str:
        return f"https://{self._server.host}:{self._server.port}"

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def allowed_host(self) -> str:
        """This fake's ``host:port``, for the allow-lists of device-chosen URLs (WNS and
        MPNS channel URIs, Web Push endpoints)."""
        return urllib.parse.urlsplit(self.url).netloc

    def goaway(self) -> None:
        """GOAWAY on every open connection, after their current requests are answered."""
        self._goaway_all(b"")

    def _goaway_all(self, debug_data: bytes) -> None:
        """:meth:`goaway` with ``debug_data`` (APNs sends a reason there)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._server.goaway_all, debug_data)

    # Records

    def reset(self) -> None:
        """Forget records, token requests and scripts; subclasses forget their own state
        too. Knobs stay as set: tests change them with ``monkeypatch.setattr``."""
        self._records.clear()
        self._token_requests.clear()
        self._scripts.clear()

    @property
    def received(self) -> list[R]:
        """Every request answered (or dropped), accepted or not, in arrival order."""
        return self._records.all()

    @property
    def delivered(self) -> list[R]:
        """The accepted requests: the ones :meth:`wait_for` counts."""
        return self._records.counted()

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every request to this fake's OAuth token endpoint, if it has one."""
        return self._token_requests.all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[R]:
        """The first ``count`` delivered requests, waiting up to ``timeout`` seconds.

        Blocks: call it from a test thread, not from the loop the fake runs on.
        """
        return self._records.wait_for(count, timeout)

    async def _delay_or_drop(self, script: S, request: Request, dropped: R) -> bool:
        """Wait out ``script``'s delay; if it then drops the connection, record ``dropped``,
        drop it and return True."""
        if script.delay:
            await asyncio.sleep(script.delay)
        if not script.drop_connection:
            return False
        self._records.add(dropped)
        request.connection.drop()
        return True

    # h2server.Application

    def connection_made(self, connection: Connection) -> int:
        """The connection's initial SETTINGS_MAX_CONCURRENT_STREAMS (unused by HTTP/1.1)."""
        raise NotImplementedError

    def connection_lost(self, connection: Connection) -> None:
        pass

    def priority_received(self, connection: Connection, event: h2.events.PriorityUpdated) -> None:
        pass

    async def handle(self, request: Request) -> Response | None:
        raise NotImplementedError
