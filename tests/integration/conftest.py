"""Fixtures of the integration tests that deliver: the strict fake providers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pushgate.fakes.runner import FakeProviders


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProviders]:
    """Fake APNs (production and sandbox) and FCM on a thread of their own, per module."""
    with FakeProviders.start(tmp_path_factory.mktemp("fakes")) as running:
        yield running
