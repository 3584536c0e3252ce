"""The fixtures of the tests against the fakes (defined in :mod:`tests.fakes`)."""

from __future__ import annotations

from tests.fakes import fakes, key, running_fakes

__all__ = ["fakes", "key", "running_fakes"]
