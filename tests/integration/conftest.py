"""Fixtures of the integration tests that deliver: the strict fake providers, and a server
pointed at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pushgate.fakes.runner import FakeProviders
from tests.conftest import Server, running_server
from tests.integration.delivery_helpers import FAST_ENGINE


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProviders]:
    """Fake APNs (production and sandbox) and FCM on a thread of their own, per module."""
    with FakeProviders.start(tmp_path_factory.mktemp("fakes")) as running:
        yield running


@pytest.fixture(scope="module")
def delivering_server(
    database_url: str, fakes: FakeProviders, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on each kind of database that delivers to the module's fakes, with short
    leases (FAST_ENGINE)."""
    with running_server(
        database_url, tmp_path_factory.mktemp("data"), fakes.env() | FAST_ENGINE
    ) as srv:
        yield srv
