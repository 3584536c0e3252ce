"""The fixtures of the provider tests over real sockets: the fakes (:mod:`tests.fakes`)
and a transport that trusts their CA."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pushgate.fakes.runner import FakeProviders
from pushgate.providers.transport import Http2Transport
from tests.fakes import fakes, key, running_fakes

__all__ = ["fakes", "key", "running_fakes", "transport"]


@pytest.fixture
async def transport(fakes: FakeProviders) -> AsyncIterator[Http2Transport]:
    transport = Http2Transport(ca_file=fakes.ca_file)
    yield transport
    await transport.close()
