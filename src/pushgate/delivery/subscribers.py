"""The worker that POSTs to HTTP/HTTPS subscribers: claim, build, check the host, send,
record.

It runs beside the push engine in every worker process and claims from its own outbox
(:mod:`pushgate.store.subscription_deliveries`) with the same lease discipline, so a
process that dies leaves its rows due again (at-least-once, as SNS). Each row is sent as
SNS sends it (:mod:`pushgate.domain.subscriber_posts`), and its outcome follows SNS's
rules for HTTP/S ("Step 1: Make sure your endpoint is ready to process Amazon SNS
messages", https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html): a
2xx answer is delivered; an answer from 200 to 499 is not retried; anything else, a 5xx
or no answer within 15 seconds, is retried as the subscription's delivery policy says
(:mod:`pushgate.domain.delivery_policy`), and after the last retry it has failed. pushgate
records a 3xx or 4xx as failed (it was not delivered), where SNS counts it as neither.

Every request goes through the subscriber-host guard (:mod:`pushgate.subscriber_hosts`):
the host is resolved, every address checked, and the connection pinned to a checked
address, so that a subscription cannot reach this server's network neighbourhood (cloud
metadata, private ranges) unless the operator allowed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from sqlalchemy import Connection

from pushgate import metrics
from pushgate.delivery.throttle import Throttle
from pushgate.domain import delivery_policy, subscriber_posts
from pushgate.domain.runtime import Runtime
from pushgate.domain.subscriber_posts import Links, Post
from pushgate.store import subscription_deliveries as store
from pushgate.store.subscription_deliveries import ClaimedPost, PostMessage, PostOutcome
from pushgate.subscriber_hosts import HostRefused, SubscriberHosts, pinned_request_args

log = logging.getLogger("pushgate.subscribers")

_RESPONSE_LIMIT = 256
# A throttled subscription's request waits in the process up to this long; a longer
# wait goes back to the outbox.
_MAX_THROTTLE_WAIT = 5.0
_RESOLVE_TIMEOUT = 10.0
# Retries are spread over the last 20% of their delay, as SNS jitters its retries.
_JITTER = 0.2


@dataclass(frozen=True)
class SenderConfig:
    max_in_flight: int = 200
    batch_size: int = 100
    lease_seconds: float = 120.0
    poll_seconds: float = 0.25
    flush_seconds: float = 0.05
    # SNS gives an HTTP/S endpoint about 15 seconds to answer.
    timeout_seconds: float = 15.0
    grace_seconds: float = 10.0
    ca_file: Path | None = None


@dataclass(slots=True)
class _Context:
    """What the claimed rows need, read in the claim's transaction."""

    messages: dict[int, PostMessage] = field(default_factory=dict)
    subscriptions: dict[int, store.Subscriber] = field(default_factory=dict)
    topics: dict[str, dict[str, str]] = field(default_factory=dict)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trust roots, plus ``PUSHGATE_PROVIDER_CA_FILE`` when set (test CAs)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class SubscriptionSender:
    def __init__(
        self,
        rt: Runtime,
        links: Links,
        hosts: SubscriberHosts,
        config: SenderConfig,
    ) -> None:
        self._rt = rt
        self._links = links
        self._hosts = hosts
        self._config = config
        self._client = httpx.AsyncClient(
            verify=tls_context(config.ca_file),
            timeout=config.timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the host guard
            # Answers are only recorded, cut short: ask for them uncompressed.
            headers={"Accept-Encoding": "identity"},
            limits=httpx.Limits(max_connections=config.max_in_flight),
        )
        self._in_flight = 0
        self._capacity = asyncio.Event()
        self._pending: list[PostOutcome] = []
        self._released: list[tuple[int, float]] = []
        self._throttle = Throttle(_MAX_THROTTLE_WAIT)
        # Per subscriber credentials: a Digest subscriber's challenge is remembered, so
        # that later posts authenticate at once (httpx's DigestAuth caches it).
        self._auths: dict[tuple[str, bytes], BasicThenDigest] = {}
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._sends: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="subscribers-claim"),
            asyncio.create_task(self._record_loop(), name="subscribers-record"),
        ]

    async def stop(self) -> None:
        """Stop claiming, give requests in flight the grace period, record, put back."""
        self._stopping = True
        self._capacity.set()
        claim, recorder = self._tasks
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(claim, self._config.grace_seconds)
        if self._sends:
            _, late = await asyncio.wait(self._sends, timeout=self._config.grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        recorder.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush()
        await self._client.aclose()

    # --- claim ------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        cfg = self._config
        while not self._stopping:
            room = cfg.max_in_flight - self._in_flight
            if room <= 0:
                self._capacity.clear()
                await self._capacity.wait()
                continue
            try:
                claims, context = await self._claim(min(room, cfg.batch_size))
            except Exception:
                log.exception("claim failed; retrying", extra={"action": "claim_error"})
                await asyncio.sleep(1.0)
                continue
            if not claims:
                await self._rt.work.wait(cfg.poll_seconds)
                continue
            for claim in claims:
                self._in_flight += 1
                task = asyncio.create_task(self._post(claim, context))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            await asyncio.sleep(0)

    async def _claim(self, limit: int) -> tuple[list[ClaimedPost], _Context]:
        now = time.time()
        lease = now + self._config.lease_seconds

        def tx(conn: Connection) -> tuple[list[ClaimedPost], _Context]:
            claims = store.claim_due(conn, now, lease, limit)
            if not claims:
                return claims, _Context()
            return claims, _Context(
                store.messages_by_pk(conn, {c.message_pk for c in claims if c.message_pk}),
                store.subscribers(conn, {c.subscription_id for c in claims}),
                store.topic_attributes(conn, {c.topic_arn for c in claims}),
            )

        return await self._rt.db.write(tx)

    # --- send -------------------------------------------------------------------------

    async def _post(self, claim: ClaimedPost, context: _Context) -> None:
        try:
            outcome = await self._attempt(claim, context)
        except asyncio.CancelledError:
            self._released.append((claim.id, time.time()))
            raise
        except Exception as exc:  # a bug: never lose the row, try again later
            log.exception("subscriber post failed", extra={"action": "subscriber_error"})
            outcome = self._retry_or_fail(claim, context, None, type(exc).__name__, "")
        finally:
            self._in_flight -= 1
            self._capacity.set()
        if outcome is not None:
            self._pending.append(outcome)
            metrics.count_subscriber_post(
                claim.kind, outcome.state if outcome.due_at is None else "retry"
            )

    async def _attempt(self, claim: ClaimedPost, context: _Context) -> PostOutcome | None:
        now = time.time()
        sub = context.subscriptions.get(claim.subscription_id)
        if sub is None and claim.kind != store.UNSUBSCRIBE_CONFIRMATION:
            return PostOutcome(claim.id, store.FAILED, None, "SubscriptionDeleted", None, now)
        policy = _policy(context, claim)
        post = self._build(claim, context, sub.attributes if sub else {}, policy)
        if post is None:  # the message was pruned meanwhile
            return PostOutcome(claim.id, store.FAILED, None, "MessageDeleted", None, now)
        try:
            async with asyncio.timeout(_RESOLVE_TIMEOUT):
                target = await self._hosts.resolve(claim.url)
        except (OSError, TimeoutError) as exc:  # the name does not resolve (now)
            return self._retry_or_fail(claim, context, None, "DnsError", str(exc))
        except HostRefused as refused:
            log.warning(
                "subscriber host refused",
                extra={"action": "subscriber_refused", "subscription": claim.subscription_arn},
            )
            return PostOutcome(
                claim.id, store.FAILED, None, "HostRefused", str(refused)[:_RESPONSE_LIMIT], now
            )
        wait = self._throttle.wait(claim.subscription_id, policy.max_receives_per_second)
        if wait is None:
            self._released.append((claim.id, time.time() + _MAX_THROTTLE_WAIT))
            return None
        if wait:
            await asyncio.sleep(wait)
        url, headers, extensions = pinned_request_args(target)
        try:
            # SNS's 15 s is for the whole exchange, however slowly the subscriber drips.
            async with asyncio.timeout(self._config.timeout_seconds):
                status, answer = await self._exchange(
                    url, post, headers, extensions, self._auth(claim.url, sub)
                )
        except (httpx.TimeoutException, TimeoutError):
            return self._retry_or_fail(claim, context, None, "Timeout", "")
        except httpx.HTTPError as exc:
            return self._retry_or_fail(claim, context, None, "ConnectionError", str(exc))
        text = answer.decode(errors="replace") or None
        if 200 <= status < 300:
            return PostOutcome(claim.id, store.SENT, status, None, None, time.time())
        if status < 500:
            return PostOutcome(claim.id, store.FAILED, status, f"HTTP {status}", text, time.time())
        return self._retry_or_fail(claim, context, status, f"HTTP {status}", text or "")

    async def _exchange(
        self,
        url: str,
        post: Post,
        headers: dict[str, str],
        extensions: dict[str, str],
        auth: httpx.Auth | None,
    ) -> tuple[int, bytes]:
        """POST, and the status with the first bytes of the answer: a subscriber's answer
        is only recorded, so a large one is not read."""
        async with self._client.stream(
            "POST",
            url,
            content=post.body,
            headers=post.headers | headers,
            extensions=extensions,
            auth=auth or httpx.USE_CLIENT_DEFAULT,
        ) as response:
            answer = b""
            async for chunk in response.aiter_raw():
                answer += chunk
                if len(answer) >= _RESPONSE_LIMIT:
                    break
            return response.status_code, answer[:_RESPONSE_LIMIT]

    def _auth(self, url: str, sub: store.Subscriber | None) -> httpx.Auth | None:
        """The credentials of a URL with user info: its user, and the password stored
        encrypted (an UnsubscribeConfirmation, sent after the subscription is gone, has
        none and goes without)."""
        user = urlsplit(url).username
        if user is None or sub is None or sub.password_encrypted is None:
            return None
        key = (user, sub.password_encrypted)
        auth = self._auths.get(key)
        if auth is None:
            password = self._rt.secrets.decrypt(sub.password_encrypted)
            auth = self._auths[key] = BasicThenDigest(unquote(user), unquote(password))
        return auth

    def _build(
        self,
        claim: ClaimedPost,
        context: _Context,
        sub: dict[str, str],
        policy: delivery_policy.HttpDeliveryPolicy,
    ) -> Post | None:
        links = self._links
        topic = context.topics.get(claim.topic_arn, {})
        version = subscriber_posts.signature_version(topic)
        if claim.kind == store.NOTIFICATION:
            message = context.messages.get(claim.message_pk or 0)
            if message is None:
                return None
            protocol = claim.url.split(":", 1)[0].lower()
            return subscriber_posts.notification(
                links,
                url=claim.url,
                message_id=claim.sns_message_id,
                topic_arn=claim.topic_arn,
                subscription_arn=claim.subscription_arn,
                text=subscriber_posts.message_text(message.body, message.structure, protocol),
                subject=message.subject,
                attributes=message.attributes,
                published_at=message.published_at,
                raw=sub.get("RawMessageDelivery") == "true",
                version=version,
                content_type=policy.content_type,
            )
        assert claim.token is not None
        return subscriber_posts.confirmation(
            links,
            kind=claim.kind,
            url=claim.url,
            message_id=claim.sns_message_id,
            topic_arn=claim.topic_arn,
            subscription_arn=claim.subscription_arn,
            token=claim.token,
            created_at=claim.created_at,
            version=version,
            content_type=policy.content_type,
        )

    def _retry_or_fail(
        self,
        claim: ClaimedPost,
        context: _Context,
        status: int | None,
        reason: str,
        response: str,
    ) -> PostOutcome:
        delay = _policy(context, claim).retry.next_delay(claim.attempts, jitter=_JITTER)
        now = time.time()
        text = response[:_RESPONSE_LIMIT] or None
        if delay is None:
            return PostOutcome(claim.id, store.FAILED, status, reason, text, now)
        return PostOutcome(claim.id, store.QUEUED, status, reason, text, now, due_at=now + delay)

    # --- record -----------------------------------------------------------------------

    async def _record_loop(self) -> None:
        while True:
            await asyncio.sleep(self._config.flush_seconds)
            try:
                await self._flush()
            except Exception:
                log.exception("recording failed; retrying", extra={"action": "record_error"})
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        outcomes, released = self._pending, self._released
        if not (outcomes or released):
            return
        self._pending, self._released = [], []

        def tx(conn: Connection) -> None:
            store.record(conn, outcomes)
            store.release(conn, released)

        try:
            await self._rt.db.write(tx)
        except BaseException:
            self._pending[:0], self._released[:0] = outcomes, released
            raise


class BasicThenDigest(httpx.Auth):
    """SNS's authentication of HTTPS subscribers ("Basic and Digest Access
    Authentication", https://docs.aws.amazon.com/sns/latest/dg/sns-http-https-endpoint-as-subscriber.html):
    Basic credentials with the request; when the subscriber answers 401 asking for Digest,
    the Digest handshake (httpx's own, RFC 7616), and Digest from then on."""

    def __init__(self, user: str, password: str) -> None:
        self._basic = httpx.BasicAuth(user, password)
        self._digest = httpx.DigestAuth(user, password)
        self._uses_digest = False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._uses_digest:
            yield from self._digest.auth_flow(request)
            return
        response = yield next(self._basic.auth_flow(request))
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and challenge.lower().startswith("digest"):
            self._uses_digest = True
            del request.headers["Authorization"]
            yield from self._digest.auth_flow(request)


def _policy(context: _Context, claim: ClaimedPost) -> delivery_policy.HttpDeliveryPolicy:
    topic = context.topics.get(claim.topic_arn, {})
    sub = context.subscriptions.get(claim.subscription_id)
    return delivery_policy.effective(
        topic.get("DeliveryPolicy"), sub.attributes.get("DeliveryPolicy") if sub else None
    )
