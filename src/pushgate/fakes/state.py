"""Thread-safe records, scripted faults and rate limits shared by the fakes.

The fakes serve on an event loop that may run in another thread than the test
(:class:`~pushgate.fakes.runner.FakeProviders`), so everything a test reads or sets goes
through a lock here.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypedDict, TypeVar

R = TypeVar("R")


class Recorder(Generic[R]):
    """Requests in arrival order; ``counts`` picks the ones that :meth:`wait_for` counts."""

    def __init__(self, counts: Callable[[R], bool]) -> None:
        self._counts = counts
        self._items: list[R] = []
        self._changed = threading.Condition()

    def add(self, item: R) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def all(self) -> list[R]:
        with self._changed:
            return list(self._items)

    def counted(self) -> list[R]:
        with self._changed:
            return [item for item in self._items if self._counts(item)]

    def wait_for(self, count: int, timeout: float) -> list[R]:
        """The first ``count`` counted items once they arrived; TimeoutError after ``timeout``.

        Blocks the calling thread: call it from test code, never from the fake's own loop.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                items = [item for item in self._items if self._counts(item)]
                if len(items) >= count:
                    return items[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout}s for {count} accepted requests, "
                        f"got {len(items)} of {len(self._items)} received"
                    )
                self._changed.wait(remaining)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()


class ScriptOptions(TypedDict, total=False):
    """How a scripted reply is played, the same in every fake's ``script``.

    It waits ``delay`` seconds (default 0), then drops the connection without an answer
    (``drop_connection``) or answers, with ``Retry-After: retry_after`` when given, and
    then GOAWAY when ``goaway`` (HTTP/2 only: HTTP/1.1 has none).
    """

    retry_after: float | None
    delay: float
    drop_connection: bool
    goaway: bool


@dataclass(frozen=True, kw_only=True)
class Script:
    """A scripted reply: for requests to ``token``, or to any token when it is None.

    ``status`` None or 200 (201 for Web Push) is the normal answer; the other fields are
    :class:`ScriptOptions`. Each fake adds the fields of its error body.
    """

    status: int | None
    token: str | None
    retry_after: float | None = None
    delay: float = 0.0
    drop_connection: bool = False
    goaway: bool = False


S = TypeVar("S", bound=Script)


@dataclass
class _Entry(Generic[S]):
    script: S
    remaining: int | None


class Scripts(Generic[S]):
    """Scripted replies, used first in, first out, each ``times`` times (None: until cleared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Entry[S]] = []

    def add(self, script: S, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            self._queue.append(_Entry(script, times))

    def take(self, token: str) -> S | None:
        """The first script for ``token`` (or for any token), one of its uses consumed."""
        with self._lock:
            for entry in self._queue:
                if entry.script.token not in (None, token):
                    continue
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._queue.remove(entry)
                return entry.script
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


class RateLimiter:
    """A token bucket per key: ``limit`` requests per ``period`` seconds, bursts up to ``limit``."""

    def __init__(self, limit: float, period: float) -> None:
        if limit <= 0 or period <= 0:
            raise ValueError("limit and period must be positive")
        self.limit = limit
        self.period = period
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, key: str, now: float) -> float:
        """0, with one request taken, when allowed; else the seconds until one would be."""
        rate = self.limit / self.period
        with self._lock:
            tokens, then = self._buckets.get(key, (self.limit, now))
            tokens = min(self.limit, tokens + (now - then) * rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / rate
            self._buckets[key] = (tokens - 1, now)
            return 0.0

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value in whole seconds, never 0."""
    return str(max(1, math.ceil(seconds)))
