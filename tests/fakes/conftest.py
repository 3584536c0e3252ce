"""The fixtures of the tests against the fakes (defined in :mod:`tests.fakes`)."""

from __future__ import annotations

from tests.fakes import client, fakes, key, running_fakes

__all__ = ["client", "fakes", "key", "running_fakes"]
