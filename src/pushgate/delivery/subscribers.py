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

Posts go through the libcurl transport the providers use
(:class:`pushgate.providers.transport.Http2Transport`, one of its own, built by the app),
one request per post, so that a slow subscriber holds up no other's outcome. libcurl
follows no redirect (``CURLOPT_FOLLOWLOCATION`` is off by default), uses no proxy from the
environment (the transport sets ``CURLOPT_PROXY`` to ""), and connects only to the
checked address (``CURLOPT_CONNECT_TO``, :func:`pushgate.subscriber_hosts.curl_connect_to`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import Connection

from pushgate import metrics
from pushgate.delivery.throttle import Throttle
from pushgate.domain import delivery_policy, subscriber_posts
from pushgate.domain.runtime import Runtime
from pushgate.domain.subscriber_posts import Links, Post
from pushgate.providers.transport import TIMEOUT_ERROR, Http2Transport, Request, Response
from pushgate.store import subscription_deliveries as store
from pushgate.store.subscription_deliveries import ClaimedPost, PostMessage, PostOutcome
from pushgate.subscriber_hosts import (
    DEFAULT_PORTS,
    HostRefused,
    ResolvedTarget,
    SubscriberHosts,
    curl_connect_to,
)

log = logging.getLogger("pushgate.subscribers")

_RESPONSE_LIMIT = 256
# A subscriber's answer is only recorded, its first _RESPONSE_LIMIT bytes: libcurl reads
# at most this much of it (Request.max_body) and stops a longer one, whose status then
# counts without its text.
_ANSWER_LIMIT = 16 * 1024
_POOL = "subscribers"
# Answers are only recorded, cut short: ask for them uncompressed.
_ACCEPT_ENCODING = "Accept-Encoding: identity"
# Characters a URL path or query keeps as they are; anything else (spaces, non-ASCII)
# is percent-encoded before the URL goes to libcurl, which refuses them.
_URL_SAFE = "/%:@!$&'()*+,;=-._~?"
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


@dataclass(slots=True)
class _Context:
    """What the claimed rows need, read in the claim's transaction."""

    messages: dict[int, PostMessage] = field(default_factory=dict)
    subscriptions: dict[int, store.Subscriber] = field(default_factory=dict)
    topics: dict[str, dict[str, str]] = field(default_factory=dict)


class Credentials:
    """A subscriber's user and password, and whether it asked for Digest: SNS's
    authentication of HTTPS subscribers ("Basic and Digest Access Authentication",
    https://docs.aws.amazon.com/sns/latest/dg/sns-http-https-endpoint-as-subscriber.html)
    sends Basic credentials with the request; a subscriber that answers 401 with a Digest
    challenge gets the Digest handshake (libcurl's, RFC 7616), and Digest from then on."""

    __slots__ = ("digest", "user_password")

    def __init__(self, user: str, password: str) -> None:
        self.user_password = (user, password)
        self.digest = False


def asks_for_digest(response: Response) -> bool:
    """A 401 whose ``WWW-Authenticate`` challenge is Digest."""
    challenge = response.headers.get("www-authenticate", "")
    return response.status == 401 and challenge.lower().startswith("digest")


def curl_url(target: ResolvedTarget) -> str:
    """The URL libcurl is given for ``target``: its checked host and port, no user info
    (credentials go separately), path and query percent-encoded where they need it.

    Built from the guard's own parse rather than passed through, so that libcurl's URL
    parser cannot read a host other than the one checked (and pinned by ``CONNECT_TO``).
    """
    parts = urlsplit(target.url)
    host = target.host
    if ":" in host:
        host = f"[{ipaddress.ip_address(host)}]"
    netloc = host if DEFAULT_PORTS[parts.scheme] == target.port else f"{host}:{target.port}"
    path = quote(parts.path or "/", safe=_URL_SAFE)
    query = f"?{quote(parts.query, safe=_URL_SAFE)}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{path}{query}"


class SubscriptionSender:
    """Posts to HTTP/S subscribers through ``transport``, which the caller owns (creates,
    and closes after :meth:`stop`)."""

    def __init__(
        self,
        rt: Runtime,
        links: Links,
        hosts: SubscriberHosts,
        config: SenderConfig,
        transport: Http2Transport,
    ) -> None:
        self._rt = rt
        self._links = links
        self._hosts = hosts
        self._config = config
        self._transport = transport
        self._timeout_ms = int(config.timeout_seconds * 1000)
        self._in_flight = 0
        self._capacity = asyncio.Event()
        self._pending: list[PostOutcome] = []
        self._released: list[tuple[int, float]] = []
        self._throttle = Throttle(_MAX_THROTTLE_WAIT)
        # Per subscriber credentials: that a subscriber wants Digest is remembered, so
        # that later posts skip the Basic attempt.
        self._auths: dict[tuple[str, bytes], Credentials] = {}
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
        response = await self._exchange(target, post, self._auth(claim.url, sub))
        status = response.status
        if status == 0:
            error = response.error or ""
            if error.startswith(TIMEOUT_ERROR):
                return self._retry_or_fail(claim, context, None, "Timeout", "")
            return self._retry_or_fail(claim, context, None, "ConnectionError", error)
        text = response.body[:_RESPONSE_LIMIT].decode(errors="replace") or None
        if 200 <= status < 300:
            return PostOutcome(claim.id, store.SENT, status, None, None, time.time())
        if status < 500:
            return PostOutcome(claim.id, store.FAILED, status, f"HTTP {status}", text, time.time())
        return self._retry_or_fail(claim, context, status, f"HTTP {status}", text or "")

    async def _exchange(
        self, target: ResolvedTarget, post: Post, auth: Credentials | None
    ) -> Response:
        """POST to the checked address, within SNS's 15 s for the whole exchange however
        slowly the subscriber drips (a Digest handshake included), reading at most
        :data:`_ANSWER_LIMIT` bytes of the answer."""
        lines = [f"{name}: {value}" for name, value in post.headers.items()]
        lines.append(_ACCEPT_ENCODING)
        request = Request(
            "POST",
            curl_url(target),
            lines,
            post.body,
            pool=_POOL,
            connections=self._config.max_in_flight,
            connect_to=curl_connect_to(target),
            timeout_ms=self._timeout_ms,
            max_body=_ANSWER_LIMIT,
            # the challenge of a 401 decides whether to switch to Digest
            capture_headers=auth is not None and not auth.digest,
            userpwd=None if auth is None else auth.user_password,
            digest=auth is not None and auth.digest,
        )
        if auth is None or auth.digest:
            return await self._transport.request(request)
        started = time.monotonic()
        response = await self._transport.request(request)
        if asks_for_digest(response):
            auth.digest = True
            left = self._timeout_ms - int((time.monotonic() - started) * 1000)
            request = request._replace(capture_headers=False, digest=True, timeout_ms=max(left, 1))
            response = await self._transport.request(request)
        return response

    def _auth(self, url: str, sub: store.Subscriber | None) -> Credentials | None:
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
            auth = self._auths[key] = Credentials(unquote(user), unquote(password))
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


def _policy(context: _Context, claim: ClaimedPost) -> delivery_policy.HttpDeliveryPolicy:
    topic = context.topics.get(claim.topic_arn, {})
    sub = context.subscriptions.get(claim.subscription_id)
    return delivery_policy.effective(
        topic.get("DeliveryPolicy"), sub.attributes.get("DeliveryPolicy") if sub else None
    )
