"""The delivery engine of one process: fan-out, claim, send, record.

Three loops share the process's event loop:

* **fan-out** leases topic publishes and expands them into deliveries a chunk at a time
  (:func:`pushgate.store.outbox.expand_fanout`);
* **send** claims due deliveries in batches, groups them by platform application, builds
  each message's payload once per application, and hands every group to its provider
  client; up to ``max_in_flight`` deliveries are out at once;
* **record** writes the outcomes of many sends in one transaction, with the application
  events they raise (:mod:`pushgate.domain.events`): EndpointUpdated when a dead token
  disables an endpoint or a canonical token replaces its token, and DeliveryFailure when a
  direct publish (to an endpoint or a user, never a topic's) fails for good.

Every step is at-least-once: a claim is a lease, so deliveries of a process that dies are
claimed again when their lease runs out. A clean stop (SIGTERM) stops claiming, lets sends
in flight finish for a grace period, records their outcomes, and puts back what it could
not send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection

from pushgate.delivery.breaker import Breaker
from pushgate.delivery.clients import ClientRegistry, ProviderClient, Unsupported
from pushgate.delivery.recording import Failure, Outcomes, Watched
from pushgate.delivery.retry import RetryPolicy
from pushgate.domain import delivery_logs, events, payloads
from pushgate.domain.messages import MessageAttribute
from pushgate.domain.platforms import parse_platform
from pushgate.domain.runtime import Runtime
from pushgate.logs import mask
from pushgate.metrics import ApplicationMetrics, failed_unattributed
from pushgate.providers.notifications import Notification
from pushgate.providers.outcomes import NO_RESPONSE, Outcome, SendResult
from pushgate.store import applications as app_store
from pushgate.store import delivery_logs as log_store
from pushgate.store import outbox
from pushgate.store.applications import ApplicationRow

log = logging.getLogger("pushgate.delivery")

_RESPONSE_LIMIT = 1024
# Outcomes that prove the credentials work.
_ANSWERED = frozenset(
    {Outcome.SUCCESS, Outcome.UPDATE_TOKEN, Outcome.DISABLE_ENDPOINT, Outcome.FAIL_PERMANENT}
)
_APP_REFRESH_SECONDS = 2.0
# What _unsendable returns, besides a payload error's text.
_UNSENDABLE_REASONS = frozenset(
    {"EndpointDeleted", "EndpointDisabled", "PlatformApplicationDisabled", "NotificationTTLExpired"}
)


@dataclass(frozen=True)
class EngineConfig:
    batch_size: int = 500
    max_in_flight: int = 5000
    app_concurrency: int = 4000
    lease_seconds: float = 120.0
    poll_seconds: float = 0.25
    fanout_chunk: int = 2000
    flush_seconds: float = 0.05
    grace_seconds: float = 10.0
    # The transport's own request timeout is 30 s.
    send_timeout_seconds: float = 45.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Delivery status logs also go to stdout as JSON lines (PUSHGATE_DELIVERY_LOG_STDOUT).
    delivery_log_stdout: bool = False


@dataclass(slots=True)
class _Job:
    """One claimed delivery, with what is needed to send and record it."""

    claim: outbox.ClaimedDelivery
    target: outbox.Target | None = None
    request_id: str = ""
    notification: Notification | None = None
    message: outbox.StoredMessage | None = None  # for delivery status logs


class DeliveryEngine:
    def __init__(self, rt: Runtime, clients: ClientRegistry, config: EngineConfig) -> None:
        self._rt = rt
        self._clients = clients
        self._config = config
        self._apps: dict[int, ApplicationRow] = {}
        self._apps_loaded_at = 0.0
        self._messages: dict[int, outbox.StoredMessage] = {}
        self._notifications: dict[tuple[int, int], Notification | payloads.PayloadError] = {}
        self._breakers: dict[int, Breaker] = defaultdict(Breaker)
        # The application's updated_at when its breaker opened: a change means new settings.
        self._breaker_versions: dict[int, datetime | None] = {}
        self._app_in_flight: dict[int, int] = defaultdict(int)
        self._waiting: dict[int, deque[_Job]] = defaultdict(deque)
        self._in_flight = 0
        self._claimed: set[int] = set()  # ids of the deliveries in flight
        self._capacity = asyncio.Event()
        self._pending = Outcomes()
        self._flushed = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()
        self._metrics: dict[int, ApplicationMetrics] = {}

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._fanout_loop(), name="delivery-fanout"),
            asyncio.create_task(self._send_loop(), name="delivery-send"),
            asyncio.create_task(self._record_loop(), name="delivery-record"),
        ]

    async def stop(self) -> None:
        """Stop claiming; give sends in flight the grace period; record; put back the rest."""
        self._stopping = True
        self._rt.work.notify()
        self._capacity.set()
        loops, recorder = self._tasks[:2], self._tasks[2:]
        # The loops finish the claim or chunk they are in (so that it is dispatched or
        # released), then return.
        _, stuck = await asyncio.wait(loops, timeout=self._config.grace_seconds)
        for task in stuck:
            task.cancel()
        if self._sends:
            _, late = await asyncio.wait(self._sends, timeout=self._config.grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        now = time.time()
        for waiting in self._waiting.values():
            self._release(list(waiting), now)
            waiting.clear()
        for task in recorder:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush()

    # --- fan-out ----------------------------------------------------------------------

    async def _fanout_loop(self) -> None:
        db, cfg = self._rt.db, self._config
        while not self._stopping:
            now = time.time()
            job = None
            try:
                job = await db.write(outbox.claim_fanout, now, now + cfg.lease_seconds)
                while job is not None and not self._stopping:
                    lease = time.time() + cfg.lease_seconds
                    job, _ = await db.write(outbox.expand_fanout, job, cfg.fanout_chunk, lease)
                    self._rt.work.notify()
                if job is not None:  # stopping: hand the rest of the fan-out back
                    await db.write(outbox.release_fanout, job, time.time())
            except outbox.LostLease:
                job = None
            except Exception:
                log.exception("fan-out failed; retrying", extra={"action": "fanout_error"})
                await asyncio.sleep(1.0)
                continue
            if job is None:
                await self._rt.work.wait(cfg.poll_seconds)

    # --- send -------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        cfg = self._config
        while not self._stopping:
            room = cfg.max_in_flight - self._in_flight
            if room < cfg.batch_size // 4:
                self._capacity.clear()
                await self._capacity.wait()
                continue
            try:
                jobs = await self._claim(min(room, cfg.batch_size))
            except Exception:
                log.exception("claim failed; retrying", extra={"action": "claim_error"})
                await asyncio.sleep(1.0)
                continue
            if not jobs:
                await self._rt.work.wait(cfg.poll_seconds)
                continue
            self._dispatch(jobs)
            # Let sends and the recorder run between claims.
            await asyncio.sleep(0)

    async def _claim(self, limit: int) -> list[_Job]:
        now = time.time()
        lease = now + self._config.lease_seconds
        known = self._messages

        def tx(
            conn: Connection,
        ) -> tuple[
            list[outbox.ClaimedDelivery],
            dict[int, outbox.Target],
            dict[int, outbox.StoredMessage],
        ]:
            claims = outbox.claim_due(conn, now, lease, limit)
            if not claims:
                return claims, {}, {}
            targets = outbox.targets(conn, {c.endpoint_id for c in claims})
            missing = {c.message_pk for c in claims if c.message_pk not in known}
            found = outbox.messages_by_pk(conn, missing) if missing else {}
            return claims, targets, found

        claims, targets, found = await self._rt.db.write(tx)
        # A delivery still in flight here whose lease ran out (a provider slower than the
        # lease) was just claimed again: it is being handled, so do not send it twice.
        claims = [c for c in claims if c.id not in self._claimed]
        self._claimed.update(c.id for c in claims)
        self._messages.update(found)
        if len(self._messages) > 10_000:
            self._forget_messages({c.message_pk for c in claims})
        await self._refresh_apps({t.application_id for t in targets.values()})
        self._in_flight += len(claims)
        messages = self._messages
        return [
            _Job(
                c, targets.get(c.endpoint_id), self._request_id(c), None, messages.get(c.message_pk)
            )
            for c in claims
        ]

    def _forget_messages(self, keep: set[int]) -> None:
        self._messages = {k: v for k, v in self._messages.items() if k in keep}
        self._notifications = {k: v for k, v in self._notifications.items() if k[0] in keep}

    async def _refresh_apps(self, app_ids: set[int]) -> None:
        """Keep application rows fresh: credentials, Enabled and health change under us."""
        now = time.monotonic()
        stale = now - self._apps_loaded_at > _APP_REFRESH_SECONDS
        wanted = app_ids if stale else app_ids - set(self._apps)
        if not wanted:
            return
        rows = await self._rt.db.read(app_store.by_ids, sorted(wanted))
        self._apps.update({r.id: r for r in rows})
        for gone in wanted - {r.id for r in rows}:
            self._apps.pop(gone, None)
        if stale:
            self._apps_loaded_at = now

    def _dispatch(self, jobs: list[_Job]) -> None:
        """Settle what needs no provider; send the rest, one task per application."""
        now = time.time()
        out = self._pending
        groups: dict[int, list[_Job]] = defaultdict(list)
        for job in jobs:
            reason = self._unsendable(job, now)
            if reason is None:
                assert job.target is not None
                groups[job.target.application_id].append(job)
                continue
            state = outbox.EXPIRED if reason == "NotificationTTLExpired" else outbox.FAILED
            out.finished.append(outbox.Finished(job.claim.id, state, None, reason, None, now, None))
            self._count_unsendable(job, reason)
            if job.target is not None:
                self._unsendable_failure(job, job.target.application_id, reason)
            self._done([job])
        for app_id, group in groups.items():
            self._send_group(app_id, group, now)
        self._kick_recorder()

    def _unsendable_failure(self, job: _Job, app_id: int, reason: str) -> None:
        """The DeliveryFailure event of a delivery finished without a send, if wanted."""
        app = self._apps.get(app_id)
        if app is None or events.topic_of(app.attributes, events.DELIVERY_FAILURE) is None:
            return
        failure_type = _UNSENDABLE_FAILURES.get(reason, events.FAILED_PERMANENTLY)
        message = _UNSENDABLE_MESSAGES.get(reason, reason)
        self._delivery_failed(app, job, failure_type, events.failure_message(message, None))

    def _delivery_failed(
        self, app: ApplicationRow, job: _Job, failure_type: str, failure_message: str
    ) -> None:
        """Queue a DeliveryFailure event for ``job``, when it delivers a direct publish."""
        message, target = job.message, job.target
        if message is None or message.topic_id is not None or target is None:
            return
        self._pending.failures.append(
            Failure(
                app,
                target.arn,
                message.message_id,
                job.claim.attempts,
                failure_type,
                failure_message,
            )
        )

    def _count_unsendable(self, job: _Job, reason: str) -> None:
        label = reason if reason in _UNSENDABLE_REASONS else "InvalidPayload"
        if job.target is None:
            failed_unattributed(label)
        else:
            self._app_metrics(job.target.application_id).failed(label)

    def _app_metrics(self, app_id: int) -> ApplicationMetrics:
        """The metric series of an application, labels bound on first use."""
        metrics = self._metrics.get(app_id)
        if metrics is None:
            app = self._apps.get(app_id)
            if app is None:  # deleted while its deliveries were in flight
                return ApplicationMetrics("", "")
            metrics = self._metrics[app_id] = ApplicationMetrics(app.name, app.platform)
        return metrics

    def _unsendable(self, job: _Job, now: float) -> str | None:
        """Why ``job`` is finished without a send, or None; builds its notification."""
        target = job.target
        if target is None:
            return "EndpointDeleted"
        if not target.enabled:
            return "EndpointDisabled"
        app = self._apps.get(target.application_id)
        if app is None:
            return "EndpointDeleted"
        if not app.enabled:
            return "PlatformApplicationDisabled"
        built = self._notification(job.claim.message_pk, app)
        if isinstance(built, payloads.PayloadError):
            return built.reason[:256]
        if built.expires_at is not None and built.expires_at <= now:
            return "NotificationTTLExpired"
        job.notification = built
        return None

    def _notification(
        self, message_pk: int, app: ApplicationRow
    ) -> Notification | payloads.PayloadError:
        """The payload of a message for an application's platform, built once."""
        key = (message_pk, app.id)
        cached = self._notifications.get(key)
        if cached is not None:
            return cached
        msg = self._messages.get(message_pk)
        platform = parse_platform(app.platform)
        if msg is None or platform is None:
            built: Notification | payloads.PayloadError = payloads.PayloadError("MessageMissing")
        else:
            attributes = {
                name: MessageAttribute(name, kind, value)
                for name, (kind, value) in msg.attributes.items()
            }
            try:
                built = payloads.build_notification(
                    platform,
                    msg.body,
                    msg.structure,
                    attributes,
                    published_at=msg.published_at,
                    bundle_id=app.attributes.get("ApplePlatformBundleID") or None,
                )
            except payloads.PayloadError as exc:
                built = exc
        self._notifications[key] = built
        return built

    def _send_group(self, app_id: int, group: list[_Job], now: float) -> None:
        """Queue ``group`` for its application's client, minding the breaker."""
        app = self._apps[app_id]
        breaker = self._breakers[app_id]
        if breaker.is_open and self._breaker_versions.get(app_id) != app.updated_at:
            breaker.success()  # the operator changed the application: try again at once
        if not breaker.allows(now):
            self._release(group, breaker.open_until)
            return
        if breaker.probing:  # one delivery tests the credentials; the rest wait for it
            group, rest = group[:1], group[1:]
            self._release(rest, now + 1.0)
        try:
            client = self._clients.client_for(app)
        except Unsupported as exc:
            for job in group:
                self._pending.finished.append(
                    outbox.Finished(
                        job.claim.id, outbox.FAILED, None, exc.reason[:256], None, now, None
                    )
                )
                self._unsendable_failure(job, app_id, exc.reason)
            self._app_metrics(app_id).failed(exc.reason, len(group))
            self._done(group)
            return
        self._waiting[app_id].extend(group)
        self._pump(app_id, client)

    def _pump(self, app_id: int, client: ProviderClient) -> None:
        """Send what waits for ``app_id``, up to its concurrency limit.

        Deliveries beyond the limit wait here, leased, and go out as sends complete; more
        than a limit's worth waiting goes back to the outbox for a moment, so that one busy
        application cannot take every slot of the process from the others.
        """
        waiting, limit = self._waiting[app_id], self._config.app_concurrency
        room = limit - self._app_in_flight[app_id]
        while room > 0 and waiting:
            group = [waiting.popleft() for _ in range(min(room, len(waiting), 500))]
            room -= len(group)
            self._app_in_flight[app_id] += len(group)
            task = asyncio.create_task(self._send(app_id, client, group))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        if len(waiting) > limit:
            excess = [waiting.pop() for _ in range(len(waiting) - limit)]
            self._release(excess, time.time() + 0.2)

    def _release(self, jobs: list[_Job], until: float) -> None:
        """Put claimed deliveries back in the outbox unsent, due at ``until``."""
        self._pending.released.extend((j.claim.id, until) for j in jobs)
        self._done(jobs)

    async def _send(self, app_id: int, client: ProviderClient, group: list[_Job]) -> None:
        transport = self._clients.transport
        items: list[tuple[str, Notification]] = []
        ids: list[str] = []
        for job in group:
            assert job.target is not None and job.notification is not None
            items.append((job.target.token, job.notification))
            ids.append(job.request_id)
        try:
            results = await asyncio.wait_for(
                client.send_many(items, ids), self._config.send_timeout_seconds
            )
        except TimeoutError:
            # Never expected (the transport times out each request itself), but a send that
            # hangs must not hold its deliveries, and the engine's capacity, for ever; and
            # a transport that let it hang is replaced.
            log.error(
                "provider client did not answer in time; retrying on a new transport",
                extra={"action": "send_timeout", "application": self._apps[app_id].arn},
            )
            results = [SendResult(Outcome.RETRY_BACKOFF, reason="SendTimeout")] * len(group)
            if self._clients.transport is transport:
                self._clients.replace_transport()
        except asyncio.CancelledError:
            self._app_in_flight[app_id] -= len(group)
            self._release(group, time.time())
            raise
        except Exception as exc:  # a bug or a transport failure: retry later, never lose
            log.exception("send failed", extra={"action": "send_error"})
            results = [SendResult(Outcome.RETRY_BACKOFF, reason=type(exc).__name__)] * len(group)
        self._app_in_flight[app_id] -= len(group)
        self._settle(app_id, group, results)
        self._done(group)
        self._kick_recorder()
        if self._waiting[app_id] and not self._stopping:
            try:  # the client anew: the transport may have been replaced meanwhile
                client = self._clients.client_for(self._apps[app_id])
            except Unsupported:
                pass
            self._pump(app_id, client)

    def _request_id(self, claim: outbox.ClaimedDelivery) -> str:
        """A UUID fixed for a delivery across its attempts (APNs's ``apns-id``): the
        message's id with its last 48 bits replaced by the delivery's row id, so that a
        provider-side log line leads back to the message and the delivery."""
        message = self._messages.get(claim.message_pk)
        prefix = message.message_id[:24] if message is not None else "00000000-0000-4000-8000-"
        return f"{prefix}{claim.id & 0xFFFFFFFFFFFF:012x}"

    def _settle(self, app_id: int, group: Sequence[_Job], results: Sequence[SendResult]) -> None:
        """Turn provider outcomes into outbox updates and endpoint / application state."""
        results = _suspect_fleet_wide(results)
        now = time.time()
        unanswered = next((r for r in results if r.reason == NO_RESPONSE), None)
        if unanswered is not None:
            log.warning(
                "provider did not answer; will retry",
                extra={
                    "action": "provider_unreachable",
                    "application": self._apps[app_id].arn,
                    "error": unanswered.response,
                },
            )
        out, retry = self._pending, self._config.retry
        breaker = self._breakers[app_id]
        logged_from = len(out.finished)
        config_error = next(
            (
                r.reason or "ConfigurationError"
                for r in results
                if r.outcome in (Outcome.CONFIG_ERROR, Outcome.REFRESH_AUTH)
            ),
            None,
        )
        if config_error is not None:
            breaker.failure(now)
            self._breaker_versions[app_id] = self._apps[app_id].updated_at
            out.unhealthy[app_id] = config_error
            log.warning(
                "provider rejected the application's credentials",
                extra={
                    "action": "application_unhealthy",
                    "application": self._apps[app_id].arn,
                    "reason": config_error,
                },
            )
        elif any(r.outcome in _ANSWERED for r in results):
            breaker.success()
            if self._apps[app_id].unhealthy_reason is not None:
                out.healthy.add(app_id)
        else:
            breaker.probing = False  # no verdict (network trouble): probe again later
        app = self._apps[app_id]
        # The applications that want events; None for the others (nearly all).
        watched = app if events.topic_of(app.attributes, events.UPDATED) else None
        failures = app if events.topic_of(app.attributes, events.DELIVERY_FAILURE) else None
        # Counted per group, not per delivery (metrics.ApplicationMetrics).
        delivered = 0
        failed: dict[str, int] = {}
        retried: dict[str, int] = {}
        for job, result in zip(group, results, strict=True):
            claim, target = job.claim, job.target
            assert target is not None
            outcome = result.outcome
            if outcome in (Outcome.SUCCESS, Outcome.UPDATE_TOKEN):
                delivered += 1
                out.finished.append(_finished(claim.id, outbox.SENT, result, now))
                if outcome is Outcome.UPDATE_TOKEN and result.new_token:
                    if watched is None:
                        out.new_tokens.append((target.id, target.token, result.new_token))
                    else:
                        out.watched.append(Watched(watched, target, result.new_token))
                continue
            if outcome is Outcome.DISABLE_ENDPOINT:
                self._disable(target, result, watched)
            if outcome in (Outcome.DISABLE_ENDPOINT, Outcome.FAIL_PERMANENT):
                failed[result.reason] = failed.get(result.reason, 0) + 1
                out.finished.append(_finished(claim.id, outbox.FAILED, result, now))
                if failures is not None:
                    kind = (
                        events.INVALID_PLATFORM_TOKEN
                        if outcome is Outcome.DISABLE_ENDPOINT
                        else events.FAILED_PERMANENTLY
                    )
                    self._delivery_failed(failures, job, kind, _failure_message(result))
                continue
            # RETRY_BACKOFF, RETRY_AFTER, and credential errors (held by the breaker).
            if retry.exhausted(claim.attempts):
                failed[result.reason] = failed.get(result.reason, 0) + 1
                out.finished.append(_finished(claim.id, outbox.FAILED, result, now))
                if failures is not None:
                    self._delivery_failed(
                        failures, job, events.FAILED_PERMANENTLY, _failure_message(result)
                    )
                continue
            due = now + retry.delay(claim.attempts, result.retry_after)
            if config_error is not None:
                due = max(due, breaker.open_until)
            expires_at = job.notification.expires_at if job.notification else None
            if expires_at is not None and due > expires_at:
                failed["NotificationTTLExpired"] = failed.get("NotificationTTLExpired", 0) + 1
                out.finished.append(
                    _finished(claim.id, outbox.EXPIRED, result, now, "NotificationTTLExpired")
                )
                if failures is not None:
                    message = events.failure_message("NotificationTTLExpired", result.reason)
                    self._delivery_failed(failures, job, events.TTL_EXPIRED, message)
                continue
            retried[result.reason] = retried.get(result.reason, 0) + 1
            out.retries.append(
                outbox.Retry(
                    claim.id,
                    due,
                    result.status,
                    result.reason or None,
                    result.response[:_RESPONSE_LIMIT] or None,
                )
            )
        policy = delivery_logs.policy_for(self._apps[app_id].attributes)
        if policy is not None and (failed or policy.success_rate > 0):
            self._log_finished(app_id, policy, group, results, out.finished[logged_from:])
        metrics = self._app_metrics(app_id)
        metrics.count(delivered, failed, retried)
        # Only sends that got an answer: the others' time is a transport's timeout.
        metrics.observe_latencies(r.latency_ms / 1000 for r in results if r.status)

    def _log_finished(
        self,
        app_id: int,
        policy: delivery_logs.LogPolicy,
        group: Sequence[_Job],
        results: Sequence[SendResult],
        finished: Sequence[outbox.Finished],
    ) -> None:
        """Delivery status logs of the deliveries of ``group`` that ``finished`` (sec. 6.3)."""
        states = {f.id: f for f in finished}
        app = self._apps[app_id]
        for job, result in zip(group, results, strict=True):
            done = states.get(job.claim.id)
            success = done is not None and done.state == outbox.SENT
            if done is None or job.message is None or not policy.logs(success):
                continue
            assert job.target is not None
            self._pending.logs.append(
                log_store.NewLog(
                    app_id,
                    app.arn,
                    app.platform,
                    log_store.SUCCESS if success else log_store.FAILURE,
                    job.message.message_id,
                    job.message.published_at,
                    done.finished_at,
                    result.status or None,
                    delivery_logs.dwell_time_ms(
                        job.message.published_at, done.finished_at, result.latency_ms
                    ),
                    job.target.token,
                    job.claim.attempts,
                    result.response[: delivery_logs.RESPONSE_LIMIT] or None,
                    job.target.arn,
                    done.reason,
                )
            )

    def _disable(
        self, target: outbox.Target, result: SendResult, watched: ApplicationRow | None
    ) -> None:
        """SNS disables an endpoint whose token the provider calls dead; not when the token
        was registered again after the provider's verdict (an app reinstall). ``watched``:
        the application, when it wants EndpointUpdated events."""
        if _registered_after(target, result.invalid_since_ms):
            return
        if watched is None:
            self._pending.dead.append((target.id, target.token))
        else:
            self._pending.watched.append(Watched(watched, target, None))
        log.info(
            "endpoint disabled: provider reports a dead token",
            extra={
                "action": "endpoint_disabled",
                "endpoint": target.arn,
                "token": mask(target.token),
                "reason": result.reason,
            },
        )

    def _done(self, jobs: Sequence[_Job]) -> None:
        self._in_flight -= len(jobs)
        self._claimed.difference_update(j.claim.id for j in jobs)
        self._capacity.set()

    # --- record -----------------------------------------------------------------------

    def _kick_recorder(self) -> None:
        if len(self._pending) >= self._config.batch_size:
            self._flushed.set()

    async def _record_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flushed.wait(), self._config.flush_seconds)
            self._flushed.clear()
            try:
                await self._flush()
            except Exception:
                log.exception(
                    "recording outcomes failed; retrying", extra={"action": "record_error"}
                )
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        batch = self._pending
        if not batch.any():
            return
        self._pending = Outcomes()
        clock = self._rt.clock
        try:
            emitted = await self._rt.db.write(lambda conn: batch.write(conn, clock()))
        except BaseException:
            # Put the outcomes back so that the next flush writes them.
            self._pending = batch.merged(self._pending)
            raise
        if emitted:
            self._rt.work.notify()  # the events' fan-outs
        if batch.logs and self._config.delivery_log_stdout:
            delivery_logs.write_lines(batch.logs)


def _failure_message(result: SendResult) -> str:
    return events.failure_message(result.reason, result.response)


# DeliveryFailure's FailureType and FailureMessage for deliveries finished without a send
# (the others: a payload that cannot be built, a platform pushgate cannot send to).
_UNSENDABLE_FAILURES = {
    "EndpointDisabled": events.ENDPOINT_DISABLED,
    "NotificationTTLExpired": events.TTL_EXPIRED,
}
_UNSENDABLE_MESSAGES = {
    "EndpointDisabled": "Endpoint is disabled",
    "PlatformApplicationDisabled": "Platform application is disabled",
    "NotificationTTLExpired": "NotificationTTLExpired",
}


def _finished(
    delivery_id: int, state: str, result: SendResult, now: float, reason: str | None = None
) -> outbox.Finished:
    """The outbox record of a delivery that is done: the provider's status, reason and
    answer (``reason`` overrides), none of it for a sent one."""
    sent = state == outbox.SENT
    return outbox.Finished(
        delivery_id,
        state,
        result.status or None,
        None if sent else (reason or result.reason or None),
        None if sent else (result.response[:_RESPONSE_LIMIT] or None),
        now,
        result.latency_ms,
    )


# A provider that calls every token of a batch malformed or someone else's is more likely
# misconfigured (wrong topic, project or environment) than looking at a fleet of dead
# devices: specs/providers.md sec. 0.1 asks to suspect configuration before disabling
# every endpoint. Unregistered is never suspect: it names one device's uninstall.
_SUSPECT_REASONS = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "SENDER_ID_MISMATCH", "ChannelNotOwned"}
)
_FLEET_WIDE = 10


def _suspect_fleet_wide(results: Sequence[SendResult]) -> Sequence[SendResult]:
    if len(results) < _FLEET_WIDE or not all(
        r.outcome is Outcome.DISABLE_ENDPOINT and r.reason in _SUSPECT_REASONS for r in results
    ):
        return results
    return [
        replace(r, outcome=Outcome.CONFIG_ERROR, reason=f"{r.reason} for every token")
        for r in results
    ]


def _registered_after(target: outbox.Target, invalid_since_ms: int | None) -> bool:
    """APNs 410 Unregistered: a token (re)registered after the provider's ``timestamp``
    is a reinstall, not a dead token (specs/providers.md sec. 1.7)."""
    if invalid_since_ms is None:
        return False
    return target.token_updated_at.timestamp() * 1000 > invalid_since_ms
