"""All fake providers on an event loop of their own, in a background thread.

Test code that blocks (boto3 against a ``pushgate serve`` subprocess, ``wait_for``) and
the ``pushgate fake-providers`` command use the fakes through this.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType

from pushgate.fakes.adm import FakeAdm
from pushgate.fakes.apns import ApnsRegistry, FakeApns
from pushgate.fakes.baidu import FakeBaidu
from pushgate.fakes.fcm import FakeFcm
from pushgate.fakes.hms import FakeHms
from pushgate.fakes.mpns import FakeMpns
from pushgate.fakes.tls import FakeCA
from pushgate.fakes.webpush import FakeWebPush
from pushgate.fakes.wns import FakeWns

_START_TIMEOUT = 30.0
Fake = FakeApns | FakeFcm | FakeAdm | FakeHms | FakeWebPush | FakeWns | FakeMpns | FakeBaidu


class FakeProviders:
    """Every fake provider, serving until :meth:`stop`.

    ``with FakeProviders.start(directory) as fakes: ...``; ``port_base`` puts them on
    consecutive ports from ``port_base`` (in :meth:`_fakes` order) instead of free ports.
    """

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port_base: int | None = None,
        ca: FakeCA | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port_base = port_base
        self.ca = ca or FakeCA.create(directory)
        registry = ApnsRegistry()  # Apple knows a team's keys in both environments
        self.apns = FakeApns(self.ca, "production", registry=registry)
        self.apns_sandbox = FakeApns(self.ca, "sandbox", registry=registry)
        self.fcm = FakeFcm(self.ca)
        self.adm = FakeAdm(self.ca)
        self.hms = FakeHms(self.ca)
        self.webpush = FakeWebPush(self.ca)
        self.wns = FakeWns(self.ca)
        self.mpns = FakeMpns(self.ca)
        self.baidu = FakeBaidu(self.ca)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port_base: int | None = None,
        ca: FakeCA | None = None,
    ) -> FakeProviders:
        """New fakes, already serving."""
        fakes = cls(directory, host=host, port_base=port_base, ca=ca)
        fakes._start()
        return fakes

    @property
    def ca_file(self) -> Path:
        return self.ca.ca_file

    def env(self) -> dict[str, str]:
        """The settings that point a pushgate server at these fakes."""
        return {
            "PUSHGATE_APNS_URL": self.apns.url,
            "PUSHGATE_APNS_SANDBOX_URL": self.apns_sandbox.url,
            "PUSHGATE_FCM_URL": self.fcm.url,
            "PUSHGATE_ADM_URL": self.adm.url,
            "PUSHGATE_ADM_TOKEN_URL": self.adm.token_url,
            "PUSHGATE_HMS_URL": self.hms.url,
            "PUSHGATE_HMS_TOKEN_URL": self.hms.token_url,
            # Browsers' push services are device-chosen URLs: allow the fake's host.
            "PUSHGATE_WEBPUSH_ALLOWED_HOSTS": self.webpush.allowed_host,
            "PUSHGATE_WNS_TOKEN_URL": self.wns.token_url,
            "PUSHGATE_WNS_ALLOWED_HOSTS": self.wns.allowed_host,
            "PUSHGATE_MPNS_ALLOWED_HOSTS": self.mpns.allowed_host,
            "PUSHGATE_BAIDU_URL": self.baidu.url,
            "PUSHGATE_PROVIDER_CA_FILE": str(self.ca_file),
        }

    def reset(self) -> None:
        """Forget every fake's records, scripts, token states and rate-limit use."""
        for fake in self._fakes():
            fake.reset()

    def _fakes(self) -> tuple[Fake, ...]:
        return (
            self.apns,
            self.apns_sandbox,
            self.fcm,
            self.adm,
            self.hms,
            self.webpush,
            self.wns,
            self.mpns,
            self.baidu,
        )

    def _start(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-providers", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), loop).result(_START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    async def _serve(self) -> None:
        for offset, fake in enumerate(self._fakes()):
            port = 0 if self.port_base is None else self.port_base + offset
            await fake.start(self.host, port)

    async def _close(self) -> None:
        for fake in self._fakes():
            await fake.aclose()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Close every connection and the loop; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(_START_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def __enter__(self) -> FakeProviders:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
