"""Prometheus metrics: what pushgate counts, and the ``/metrics`` exposition.

Counted where it happens, per platform application (label ``application``, its name, and
``platform``; applications are few, so the series are too):

* ``pushgate_published_total{target,application,platform}``: messages accepted by
  Publish, PublishBatch (per entry) and publish-to-user; ``target`` is ``endpoint``,
  ``topic`` or ``user``, and only an endpoint publish names an application;
* ``pushgate_delivered_total``: deliveries the provider accepted;
* ``pushgate_failed_total{reason}``: deliveries given up on (provider verdict, retries
  exhausted, TTL expired, endpoint disabled, invalid payload ...);
* ``pushgate_retries_total{reason}``: sends scheduled to be tried again;
* ``pushgate_provider_latency_seconds``: a histogram of the time to the provider's answer;
* ``pushgate_subscriber_posts_total{type,outcome}``: messages POSTed to HTTP/S
  subscribers (``type`` Notification, SubscriptionConfirmation or
  UnsubscribeConfirmation; ``outcome`` sent, failed or retry).

Computed at scrape time from the database, so that every role (``api`` too) shows them:
``pushgate_queue_depth`` (deliveries due now and not claimed) and
``pushgate_queue_oldest_age_seconds`` (how long the oldest of them has been due).

The metric objects are module globals because prometheus-client is built that way. With
``serve --workers N`` each process writes its counters to files in a directory shared by
the processes (prometheus-client's multiprocess mode, :func:`enable_multiprocess`), and
whichever process answers a scrape sums them all.
"""

from __future__ import annotations

import asyncio
import atexit
import bisect
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from pushgate.store import outbox

if TYPE_CHECKING:
    from pushgate.domain.runtime import Runtime

log = logging.getLogger("pushgate.metrics")

# The library's own switch, read by prometheus-client when it is first imported: the
# variable must be in a process's environment before that (enable_multiprocess).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# A `_created` series per counter doubles the series for a timestamp nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]

_APP_LABELS = ("application", "platform")

PUBLISHED = Counter(
    "pushgate_published",
    "Messages accepted for delivery (a PublishBatch counts each entry).",
    ("target", *_APP_LABELS),
)
DELIVERED = Counter("pushgate_delivered", "Deliveries the provider accepted.", _APP_LABELS)
FAILED = Counter("pushgate_failed", "Deliveries given up on, by reason.", (*_APP_LABELS, "reason"))
RETRIES = Counter(
    "pushgate_retries", "Sends scheduled to be tried again, by reason.", (*_APP_LABELS, "reason")
)
LATENCY = Histogram(
    "pushgate_provider_latency_seconds",
    "Time from a send to the provider's answer.",
    _APP_LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

SUBSCRIBER_POSTS = Counter(
    "pushgate_subscriber_posts",
    "Messages POSTed to HTTP/S subscribers, by SNS message type and outcome (sent, failed, retry).",
    ("type", "outcome"),
)

# A reason becomes a label value as it is (APNs reasons, FCM error codes ...) when it looks
# like a code; free text (a transport's message) becomes "Other", so that the number of
# series stays bounded whatever a provider answers.
_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")


def reason_label(reason: str | None) -> str:
    """The ``reason`` label of a failure or retry: the code before any ``:`` detail."""
    code = (reason or "").partition(":")[0].strip()
    if not code:
        return "Unknown"
    return code if _REASON.fullmatch(code) else "Other"


def endpoint_labels(endpoint_arn: str) -> tuple[str, str]:
    """(application, platform) of ``...:endpoint/PLATFORM/application/uuid``."""
    parts = endpoint_arn.rpartition(":endpoint/")[2].split("/")
    return (parts[1], parts[0]) if len(parts) == 3 else ("", "")


def count_published(target: str, endpoint_arn: str | None = None, n: int = 1) -> None:
    """Count ``n`` accepted messages to a ``target`` kind (endpoint, topic or user)."""
    application, platform = endpoint_labels(endpoint_arn) if endpoint_arn else ("", "")
    PUBLISHED.labels(target, application, platform).inc(n)


def count_subscriber_post(kind: str, outcome: str) -> None:
    SUBSCRIBER_POSTS.labels(kind, outcome).inc()


class ApplicationMetrics:
    """The series of one platform application, their labels bound once.

    The delivery engine settles a group of up to hundreds of sends at a time and counts
    them here in one call each: per observation, prometheus-client's ``observe`` and
    ``inc`` cost microseconds (more in multiprocess mode, which writes a file each time),
    a noticeable share of a delivery's budget at ten thousand a second.
    """

    __slots__ = (
        "_application",
        "_bounds",
        "_buckets",
        "_failed",
        "_platform",
        "_retries",
        "_sum",
        "delivered",
    )

    def __init__(self, application: str, platform: str) -> None:
        self._application, self._platform = application, platform
        self.delivered = DELIVERED.labels(application, platform)
        histogram = LATENCY.labels(application, platform)
        # Histogram.observe adds one observation; these add a batch's worth at once. They
        # are the library's own value objects, so both modes (and the scrape) see them.
        self._bounds: Sequence[float] = histogram._upper_bounds
        self._buckets = histogram._buckets
        self._sum = histogram._sum
        self._failed: dict[str, Counter] = {}
        self._retries: dict[str, Counter] = {}

    def count(self, delivered: int, failed: dict[str, int], retried: dict[str, int]) -> None:
        """Count a batch: ``failed`` and ``retried`` map raw reasons to how many."""
        if delivered:
            self.delivered.inc(delivered)
        for reason, n in failed.items():
            self._child(self._failed, FAILED, reason).inc(n)
        for reason, n in retried.items():
            self._child(self._retries, RETRIES, reason).inc(n)

    def failed(self, reason: str, n: int = 1) -> None:
        self._child(self._failed, FAILED, reason).inc(n)

    def observe_latencies(self, seconds: Iterable[float]) -> None:
        """Add a batch of provider latencies to the histogram."""
        counts = [0] * len(self._bounds)
        total, bounds = 0.0, self._bounds
        for value in seconds:
            counts[bisect.bisect_left(bounds, value)] += 1
            total += value
        for bucket, n in zip(self._buckets, counts, strict=True):
            if n:
                bucket.inc(n)
        if total:
            self._sum.inc(total)

    def _child(self, cache: dict[str, Counter], metric: Counter, reason: str) -> Counter:
        label = reason_label(reason)
        child = cache.get(label)
        if child is None:
            child = cache[label] = metric.labels(self._application, self._platform, label)
        return child


def failed_unattributed(reason: str) -> None:
    """Count a failed delivery whose application is unknown (its endpoint was deleted)."""
    FAILED.labels("", "", reason_label(reason)).inc()


# --- Queue gauges, from the database --------------------------------------------------


@dataclass(frozen=True)
class QueueSnapshot:
    depth: int
    oldest_age_seconds: float


class QueueGauges:
    """The queue's depth and the age of its oldest due delivery, read at most every
    ``ttl`` seconds however often it is scraped (one query for concurrent scrapes)."""

    def __init__(self, ttl: float = 5.0) -> None:
        self._ttl = ttl
        self._snapshot: QueueSnapshot | None = None
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def read(self, rt: Runtime) -> QueueSnapshot | None:
        async with self._lock:
            if time.monotonic() - self._read_at < self._ttl:
                return self._snapshot
            now = rt.clock().timestamp()
            try:
                depth, oldest = await rt.db.read(outbox.due_backlog, now)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("queue metrics unavailable: %s", exc, extra={"action": "metrics_error"})
                self._snapshot = None
            else:
                age = max(0.0, now - oldest) if oldest is not None else 0.0
                self._snapshot = QueueSnapshot(depth, age)
            self._read_at = time.monotonic()
            return self._snapshot

    @staticmethod
    def families(snapshot: QueueSnapshot | None) -> list[Metric]:
        if snapshot is None:
            return []
        return [
            GaugeMetricFamily(
                "pushgate_queue_depth",
                "Deliveries due now and not claimed by a worker.",
                value=snapshot.depth,
            ),
            GaugeMetricFamily(
                "pushgate_queue_oldest_age_seconds",
                "How long the oldest due delivery has waited (0 with none due).",
                value=snapshot.oldest_age_seconds,
            ),
        ]


# --- Exposition -----------------------------------------------------------------------


class _Scrape:
    """One scrape: the counters (this process's, or every process's) and the gauges."""

    def __init__(self, counters: Collector, gauges: list[Metric]) -> None:
        self._counters, self._gauges = counters, gauges

    def collect(self) -> Iterable[Metric]:
        yield from self._counters.collect()
        yield from self._gauges


class Exposition:
    """Renders ``/metrics``: Prometheus text, or OpenMetrics when the scraper asks."""

    def __init__(self, queue_ttl: float = 5.0) -> None:
        self._queue = QueueGauges(queue_ttl)

    async def render(self, rt: Runtime | None, accept: str) -> tuple[bytes, str]:
        """The body and its content type for a scraper sending ``Accept: accept``."""
        snapshot = await self._queue.read(rt) if rt is not None else None
        encoder, content_type = choose_encoder(accept)
        return encoder(_Scrape(_counters(), QueueGauges.families(snapshot))), content_type


def _counters() -> Collector:
    path = os.environ.get(MULTIPROC_ENV)
    if path:  # every process's files, summed
        collector: Collector = MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        return collector
    return REGISTRY


def enable_multiprocess() -> Path:
    """Give the processes that ``serve --workers N`` is about to start a fresh, shared
    directory for their counters, removed when this (the parent) process exits.

    It must be called before the workers start (they inherit the environment, and
    prometheus-client reads it when first imported) and it must be empty at each start,
    or counters of an earlier run would be added in: so it is a new temporary directory.
    """
    path = Path(tempfile.mkdtemp(prefix="pushgate-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
