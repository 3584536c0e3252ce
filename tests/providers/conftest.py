"""The fixtures of the provider tests over real sockets: the fakes (:mod:`tests.fakes`),
each of them by name, and a transport that trusts their CA.

The fakes serve on a thread of their own for the whole module and forget what a test
left (``reset()``) after it; a test that changes a fake's knob (``rate_limit``,
``daily_quota`` ...) does so with ``monkeypatch``, so that the next test finds it as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pushgate.fakes.adm import FakeAdm
from pushgate.fakes.baidu import FakeBaidu
from pushgate.fakes.hms import FakeHms
from pushgate.fakes.mpns import FakeMpns
from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.wns import FakeWns
from pushgate.providers.transport import Http2Transport
from tests.fakes import fakes, key, running_fakes

__all__ = ["adm", "baidu", "fakes", "hms", "key", "mpns", "running_fakes", "transport", "wns"]


@pytest.fixture
async def transport(fakes: FakeProviders) -> AsyncIterator[Http2Transport]:
    transport = Http2Transport(ca_file=fakes.ca_file)
    yield transport
    await transport.close()


@pytest.fixture
def adm(fakes: FakeProviders) -> FakeAdm:
    return fakes.adm


@pytest.fixture
def hms(fakes: FakeProviders) -> FakeHms:
    return fakes.hms


@pytest.fixture
def wns(fakes: FakeProviders) -> FakeWns:
    return fakes.wns


@pytest.fixture
def mpns(fakes: FakeProviders) -> FakeMpns:
    return fakes.mpns


@pytest.fixture
def baidu(fakes: FakeProviders) -> FakeBaidu:
    return fakes.baidu
