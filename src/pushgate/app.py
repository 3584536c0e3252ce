"""Builds the ASGI application: the store, the SNS API, the REST API, health checks.

Everything is created inside the lifespan and handed on explicitly; no module globals.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from pushgate import logs, metrics
from pushgate.api.access_log import AccessLog
from pushgate.api.rest.auth import require_access_key
from pushgate.api.rest.logs import router as logs_router
from pushgate.api.rest.messages import router as messages_router
from pushgate.api.rest.problems import (
    Problem,
    domain_error_response,
    problem_response,
    validation_error_response,
)
from pushgate.api.rest.registrations import router as registrations_router
from pushgate.api.sns.auth import SecretCache
from pushgate.api.sns.endpoint import SnsQueryApp
from pushgate.crypto import SecretBox, SecretKeyMismatch, load_or_create_key
from pushgate.delivery.clients import ClientRegistry
from pushgate.delivery.engine import DeliveryEngine, EngineConfig
from pushgate.delivery.retry import RetryPolicy
from pushgate.delivery.subscribers import SenderConfig, SubscriptionSender
from pushgate.domain import access_keys
from pushgate.domain.arns import Scope
from pushgate.domain.errors import SnsError
from pushgate.domain.registrations import OidcConfigs
from pushgate.domain.runtime import Runtime
from pushgate.domain.subscriber_posts import Links
from pushgate.jobs import PeriodicPruner, prune_policy
from pushgate.oidc import OidcConfig, OidcVerifier
from pushgate.providers.hosts import DeviceHosts
from pushgate.providers.transport import Http2Transport
from pushgate.settings import Settings, forwarded, unknown_env_vars
from pushgate.signing_key import SigningKeyCache
from pushgate.store import migrate
from pushgate.store.database import Database
from pushgate.subscriber_hosts import SubscriberHosts

log = logging.getLogger("pushgate")


def oidc_config(settings: Settings) -> OidcConfig | None:
    """The server-wide OpenID Connect settings of the registration API, if configured."""
    if not settings.oidc_issuer:
        return None
    audience = tuple(a.strip() for a in (settings.oidc_audience or "").split(",") if a.strip())
    return OidcConfig(
        issuer=settings.oidc_issuer,
        audience=audience,
        jwks_url=settings.oidc_jwks_url,
        user_claim=settings.oidc_user_claim,
    )


def build_runtime(settings: Settings) -> Runtime:
    """The database handle and secret box that every command and the server share."""
    if settings.uses_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = (
        settings.secret_key.get_secret_value()
        if settings.secret_key
        else load_or_create_key(settings.data_dir)
    )
    return Runtime(
        db=Database(settings.effective_database_url, pool_size=settings.db_pool_size),
        secrets=SecretBox(key),
        account_id=settings.account_id,
        validate_credentials=settings.validate_credentials,
        device_hosts=DeviceHosts.from_settings(
            settings.wns_allowed_hosts, settings.mpns_allowed_hosts, settings.webpush_allowed_hosts
        ),
        subscriber_hosts=SubscriberHosts.from_settings(
            settings.subscription_allowed_hosts, settings.subscription_denied_hosts
        ),
    )


async def bootstrap_keys(rt: Runtime, settings: Settings) -> access_keys.AccessKey | None:
    """Ensure the key from settings; with no key at all, create one. Returns a new key."""
    if settings.access_key_id and settings.secret_access_key:
        key = access_keys.AccessKey(
            settings.access_key_id, settings.secret_access_key.get_secret_value()
        )
        await access_keys.ensure(rt, key)
        return None
    if await access_keys.any_exist(rt):
        return None
    return await access_keys.create(rt, name="first-start")


@dataclass
class State:
    runtime: Runtime | None = None
    sns: SnsQueryApp | None = None
    engine: DeliveryEngine | None = None
    subscribers: SubscriptionSender | None = None
    subscriber_transport: Http2Transport | None = None
    clients: ClientRegistry | None = None
    pruner: PeriodicPruner | None = None


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        batch_size=settings.delivery_batch_size,
        max_in_flight=settings.delivery_max_in_flight,
        app_concurrency=settings.delivery_app_concurrency,
        lease_seconds=settings.delivery_lease_seconds,
        fanout_chunk=settings.delivery_fanout_chunk,
        retry=RetryPolicy(max_attempts=settings.delivery_max_attempts),
        delivery_log_stdout=settings.delivery_log_stdout,
    )


class PushgateApp:
    """The root ASGI app: ``/`` is the SNS Query API, everything else the FastAPI app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = State()
        self.rest = FastAPI(
            title="pushgate",
            lifespan=self._lifespan,
            docs_url=None,
            redoc_url=None,
        )
        self.rest.include_router(messages_router)
        self.rest.include_router(registrations_router)
        self.rest.include_router(logs_router)
        self.rest.add_exception_handler(Problem, problem_response)
        self.rest.add_exception_handler(SnsError, domain_error_response)
        self.rest.add_exception_handler(RequestValidationError, validation_error_response)
        self.signing_keys = SigningKeyCache()
        self._routes()
        self._asgi = AccessLog(self._dispatch) if settings.access_log else self._dispatch

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)

    async def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/" and self.state.sns is not None:
            await self.state.sns(scope, receive, send)
        else:
            await self.rest(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        for name in unknown_env_vars():
            log.warning("unknown setting %s ignored", name, extra={"action": "config_warning"})
        rt = build_runtime(self.settings)
        try:
            revision = await _migrate_and_bootstrap(rt, self.settings)
            await self.signing_keys.load(rt)  # the SNS message-signing key
        except SecretKeyMismatch as exc:
            log.error("cannot start: %s", exc, extra={"action": "start_failed"})
            await rt.db.dispose()
            raise
        self.state.runtime = rt
        cache = SecretCache(rt)
        self.rest.state.runtime, self.rest.state.secret_cache = rt, cache
        self.rest.state.scope = Scope(self.settings.account_id, self.settings.region)
        self.rest.state.oidc_config = oidc_config(self.settings)
        self.rest.state.oidc_verifier = OidcVerifier()
        self.rest.state.oidc_configs = OidcConfigs()
        if self.settings.role in ("all", "api"):
            self.state.sns = SnsQueryApp(rt, cache)
        if self.settings.role in ("all", "worker"):
            self.state.clients = ClientRegistry(rt, self.settings)
            self.state.engine = DeliveryEngine(rt, self.state.clients, engine_config(self.settings))
            self.state.engine.start()
            # Subscriber posts get a transport (so a thread and connections) of their own,
            # beside the providers'; PUSHGATE_PROVIDER_CA_FILE is trusted for them too.
            self.state.subscriber_transport = Http2Transport(ca_file=self.settings.provider_ca_file)
            self.state.subscribers = SubscriptionSender(
                rt,
                Links(self.settings.effective_public_url, self.signing_keys.get()),
                rt.subscriber_hosts,
                SenderConfig(
                    max_in_flight=self.settings.subscription_max_in_flight,
                    lease_seconds=self.settings.delivery_lease_seconds,
                ),
                self.state.subscriber_transport,
            )
            self.state.subscribers.start()
            if self.settings.prune_interval is not None:
                self.state.pruner = PeriodicPruner(
                    rt,
                    prune_policy(self.settings),
                    interval=self.settings.prune_interval,
                    database_url=self.settings.effective_database_url,
                )
                self.state.pruner.start()
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector, whose full passes over it were tens of milliseconds of stalled loop.
        gc.collect()
        gc.freeze()
        log.info(
            "pushgate started",
            extra={"action": "started", "schema": revision, "settings": self.settings.redacted()},
        )
        try:
            yield
        finally:
            self.state.sns = None
            if self.state.pruner is not None:
                await self.state.pruner.stop()
            if self.state.engine is not None:
                await self.state.engine.stop()
            if self.state.subscribers is not None:
                await self.state.subscribers.stop()
            if self.state.subscriber_transport is not None:
                await self.state.subscriber_transport.close()
            if self.state.clients is not None:
                await self.state.clients.close()
            await self.rest.state.oidc_verifier.close()
            await rt.db.dispose()

    def _routes(self) -> None:
        @self.rest.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @self.rest.get("/readyz", include_in_schema=False)
        async def readyz() -> JSONResponse:
            rt = self.state.runtime
            try:
                if rt is None:
                    raise RuntimeError("starting")
                await rt.db.ping()
            except (SQLAlchemyError, OSError, RuntimeError) as exc:
                return JSONResponse({"status": "unavailable", "reason": str(exc)}, 503)
            return JSONResponse({"status": "ready"})

        exposition = metrics.Exposition()

        # Prometheus scrapes with an access key (basic_auth: key id and secret), like any
        # other caller: no endpoint answers without authentication.
        @self.rest.get(
            "/metrics", include_in_schema=False, dependencies=[Depends(require_access_key)]
        )
        async def metrics_endpoint(request: Request) -> Response:
            body, content_type = await exposition.render(
                self.state.runtime, request.headers.get("accept", "")
            )
            return Response(body, media_type=content_type)

        signing_keys = self.signing_keys

        # The certificate that verifies the SNS messages sent to HTTP/S subscribers, served
        # without authentication (an exception, like the health checks): Amazon SNS serves
        # its certificates publicly, message validators fetch them anonymously, and a
        # certificate holds only a public key.
        @self.rest.get("/SimpleNotificationService-{cert_id}.pem", include_in_schema=False)
        async def signing_certificate(cert_id: str) -> Response:
            key = signing_keys.get()
            if cert_id != key.cert_id:
                raise Problem(404, "Not Found", "no such signing certificate")
            return Response(key.cert_pem, media_type="application/x-pem-file")


def create_app(settings: Settings) -> PushgateApp:
    return PushgateApp(settings)


def create_worker_app() -> PushgateApp:
    """The app factory of each process of ``pushgate serve --workers N``."""
    settings = forwarded()
    logs.configure(settings.log_level)
    return PushgateApp(settings)


async def prepare(settings: Settings) -> None:
    """Migrate and ensure access keys once, before worker processes start (so that a first
    start prints one key, not one per process); give them a shared metrics directory."""
    metrics.enable_multiprocess()
    rt = build_runtime(settings)
    try:
        await _migrate_and_bootstrap(rt, settings)
    finally:
        await rt.db.dispose()


async def _migrate_and_bootstrap(rt: Runtime, settings: Settings) -> str | None:
    """Bring the schema up to date and ensure an access key; return the schema revision."""
    revision = await migrate.upgrade(rt.db)
    created = await bootstrap_keys(rt, settings)
    if created is not None:
        # Printed once, on the first start, so that the operator can copy it.
        print(
            "pushgate: created an access key (shown only now):\n"
            f"  AWS_ACCESS_KEY_ID={created.access_key_id}\n"
            f"  AWS_SECRET_ACCESS_KEY={created.secret_access_key}",
            flush=True,
        )
    return revision
