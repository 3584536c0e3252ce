"""Settings: flags, else ``PUSHGATE_*`` environment variables, else defaults.

This is the one place that reads the environment. ``cli.py`` passes flags in as keyword
arguments; everything else receives a :class:`Settings` object.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pushgate.domain.pruning import parse_duration
from pushgate.providers import hosts

ENV_PREFIX = "PUSHGATE_"


def _duration_in(value: Any) -> Any:
    """``30d``, ``12h``, ``off`` (parse_duration); ISO 8601, as ``forward`` writes a
    timedelta, is left to pydantic."""
    if isinstance(value, str) and value.strip()[:1] in ("P", "p", "-"):
        return value
    return parse_duration(value)


def _duration_out(value: timedelta | None) -> timedelta | None:
    if value is not None and value < timedelta(0):
        raise ValueError("a duration cannot be negative")
    return value or None  # zero turns the rule off


# A duration setting: None (or 0, "off") turns it off.
Duration = Annotated[timedelta | None, BeforeValidator(_duration_in), AfterValidator(_duration_out)]
# How `pushgate serve --workers N` hands its resolved settings to the worker processes.
FORWARDED = "_PUSHGATE_FORWARDED_SETTINGS"


class Settings(BaseSettings):
    """Everything pushgate can be told. Field ``x`` is read from ``PUSHGATE_X``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=4575, ge=0, le=65535)
    data_dir: Path = Path("./pushgate-data")
    database_url: str | None = Field(
        default=None,
        description="sqlite:///path or postgresql://...; default SQLite in the data dir",
    )
    role: Literal["all", "api", "worker"] = "all"
    workers: int = Field(default=1, ge=1, le=64, description="server processes sharing the port")

    region: str = "us-east-1"
    account_id: str = "123456789012"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None, description="Key encrypting stored secrets; generated when absent"
    )

    validate_credentials: bool = Field(
        default=True,
        description="Check platform credentials' format on CreatePlatformApplication",
    )
    log_level: str = "INFO"
    access_log: bool = True
    db_pool_size: int = Field(default=16, ge=1, description="PostgreSQL connections a process")

    # Provider base URLs (delivery); tests and staging point them at fakes.
    apns_url: str = "https://api.push.apple.com"
    apns_sandbox_url: str = "https://api.sandbox.push.apple.com"
    fcm_url: str = "https://fcm.googleapis.com"
    adm_url: str = "https://api.amazon.com"
    adm_token_url: str = "https://api.amazon.com/auth/o2/token"
    wns_token_url: str = "https://login.live.com/accesstoken.srf"
    baidu_url: str = "https://api.tuisong.baidu.com"
    hms_url: str = "https://push-api.cloud.huawei.com"
    hms_token_url: str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
    # Device-supplied URLs may only point at these hosts (providers/hosts.py): a comma-
    # separated list of host names, "*.suffix" wildcards, each with an optional ":port".
    wns_allowed_hosts: str = ",".join(hosts.WNS_HOSTS)
    mpns_allowed_hosts: str = ",".join(hosts.MPNS_HOSTS)
    webpush_allowed_hosts: str = ",".join(hosts.WEBPUSH_HOSTS)
    provider_ca_file: Path | None = None

    # Who vouches for the users of the registration API (``Authorization: Bearer``): an
    # OpenID Connect issuer; applications may name their own (OidcIssuer attribute).
    oidc_issuer: str | None = None
    oidc_audience: str | None = Field(
        default=None, description="comma-separated: the client ids tokens may be issued to"
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="default: the issuer's discovery document's jwks_uri"
    )
    oidc_user_claim: str = "sub"

    # The delivery engine (roles all and worker).
    delivery_batch_size: int = Field(default=500, ge=1, description="deliveries claimed at once")
    delivery_max_in_flight: int = Field(
        default=5000, ge=1, description="deliveries out to providers at once, per process"
    )
    delivery_app_concurrency: int = Field(
        default=4000, ge=1, description="deliveries in flight per platform application"
    )
    delivery_fanout_chunk: int = Field(
        default=2000, ge=1, description="topic subscriptions expanded per transaction"
    )
    delivery_max_attempts: int = Field(default=10, ge=1, description="tries before giving up")
    delivery_log_stdout: bool = Field(
        default=False, description="also print delivery status logs as JSON lines on stdout"
    )
    delivery_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="how long a claimed delivery is reserved before another worker may retry it",
    )

    # Serve HTTPS (a PEM certificate chain and its key); else plain HTTP, for a proxy.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = Field(
        default=None, description="the certificate's private key; default: in the cert file"
    )

    # HTTP/HTTPS topic subscriptions. The URL under which subscribers reach this server:
    # SubscribeURL, UnsubscribeURL and SigningCertURL start with it.
    public_url: str | None = Field(
        default=None, description="how subscribers reach this server; default http://host:port"
    )
    # Where subscriptions may POST (subscriber_hosts.py): host names, "*.suffix" wildcards,
    # IP addresses or CIDR ranges, comma-separated. Private, loopback and link-local
    # addresses (cloud metadata included) are refused unless allowed here explicitly.
    subscription_allowed_hosts: str = Field(
        default="", description="if set, the only hosts subscriptions may POST to"
    )
    subscription_denied_hosts: str = Field(
        default="", description="hosts subscriptions may never POST to"
    )
    subscription_max_in_flight: int = Field(
        default=200, ge=1, description="HTTP/S subscription requests in flight, per process"
    )

    # Pruning beyond SNS: the worker role runs it every prune_interval; `pushgate prune` on
    # demand. Durations like 30d, 12h, 1d12h; 0 or off turns a rule off.
    prune_disabled_after: Duration = Field(
        default=timedelta(days=30), description="delete endpoints disabled for longer than this"
    )
    prune_stale_after: Duration = Field(
        default=None, description="delete endpoints whose token was not refreshed for this long"
    )
    message_retention: Duration = Field(
        default=timedelta(days=14),
        description="delete settled messages (and their deliveries) published longer ago",
    )
    prune_interval: Duration = Field(
        default=timedelta(hours=1), description="how often worker processes prune; off: never"
    )

    @field_validator("account_id")
    @classmethod
    def _twelve_digits(cls, value: str) -> str:
        if not re.fullmatch(r"\d{12}", value):
            raise ValueError("must be 12 digits")
        return value

    @field_validator("region")
    @classmethod
    def _region_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", value):
            raise ValueError("must look like an AWS region, e.g. us-east-1")
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pushgate.db').resolve()}"

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls_cert_file is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def uses_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def redacted(self) -> dict[str, Any]:
        """A view safe for logs: secrets masked, passwords in URLs hidden."""
        view = self.model_dump(mode="json")
        for name in ("secret_access_key", "secret_key"):
            if view.get(name):
                view[name] = "**********"
        url = view.get("database_url")
        if url:
            view["database_url"] = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
        return view


def forward(settings: Settings) -> None:
    """Put ``settings`` where the worker processes that ``serve --workers`` spawns find them
    (their environment), secrets included: flags given to the parent reach them too."""
    data = settings.model_dump(mode="json")
    for name in ("secret_access_key", "secret_key"):
        secret = getattr(settings, name)
        data[name] = secret.get_secret_value() if secret is not None else None
    os.environ[FORWARDED] = json.dumps(data)


def forwarded() -> Settings:
    """The settings a worker process received from its parent."""
    return Settings(**json.loads(os.environ[FORWARDED]))


def unknown_env_vars(environ: dict[str, str] | None = None) -> list[str]:
    """``PUSHGATE_*`` variables that name no setting: most likely typos, worth a warning."""
    env = os.environ if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)
