"""``pushgate fake-providers``: the fakes in the foreground, with credentials to try them.

Everything lives in one data directory and is reused on the next start (the CA, the
APNs signing key, the FCM service account, and each other platform's principal and
credential, kept as its ``create-platform-application`` attributes file), so a pushgate
server configured once keeps working when the fakes restart.

Device tokens: APNs, FCM and HMS take any well-formed token, and ADM and Baidu do here
(their ``accept_unknown_*`` knobs are on). WNS and MPNS channel URIs and Web Push
subscriptions are minted by their fake, which forgets them when it stops: a few are
printed on each start.
"""

from __future__ import annotations

import json
import secrets
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pushgate.fakes.runner import FakeProviders
from pushgate.fakes.tls import FakeCA

TEAM_ID = "TEAM123456"
BUNDLE_ID = "com.example.app"
PROJECT_ID = "pushgate-demo"
MPNS_SERVICE = "pushgate-demo"
APNS_KEY_FILE = "apns-key.json"
SERVICE_ACCOUNT_FILE = "fcm-service-account.json"
APNS_ATTRIBUTES_FILE = "apns-platform-attributes.json"
FCM_ATTRIBUTES_FILE = "fcm-platform-attributes.json"
MPNS_CERTIFICATE_FILE = "mpns-certificate.pem"
MPNS_KEY_FILE = "mpns-key.pem"
MINTED_TOKENS = 3
READY = "Serving; press Ctrl-C to stop."


@dataclass(frozen=True)
class ApnsKeyFile:
    path: Path
    key_id: str
    team_id: str
    bundle_id: str


Details = Callable[[FakeProviders, Path, str, str], list[str]]


@dataclass(frozen=True)
class PairPlatform:
    """A platform whose application is a principal and a credential that its fake issues.

    ``create`` asks the fake for a new pair, ``register`` makes it accept a saved one,
    ``tokens`` gives the device tokens to print (each may be followed by a hint), and
    ``details`` the lines that show the pair (default: ``principal`` and ``credential``
    name its two values).
    """

    platform: str  # as SNS names it in create-platform-application --platform
    title: str
    principal: str
    credential: str
    create: Callable[[FakeProviders], tuple[str, str]]
    register: Callable[[FakeProviders, str, str], None]
    tokens: Callable[[FakeProviders, str, str], list[str]]
    details: Details | None = None

    @property
    def attributes_file(self) -> str:
        return f"{self.platform.lower()}-platform-attributes.json"


def _adm_tokens(fakes: FakeProviders, principal: str, credential: str) -> list[str]:
    example = "amzn1.adm-registration.v3." + secrets.token_urlsafe(24)
    return [f"{example} (or any registration id of 8+ characters [A-Za-z0-9._-+/=!])"]


def _hms_tokens(fakes: FakeProviders, principal: str, credential: str) -> list[str]:
    return [f"{fakes.hms.create_token()} (or any token of 32+ characters [A-Za-z0-9_-+/=.:])"]


def _wns_tokens(fakes: FakeProviders, principal: str, credential: str) -> list[str]:
    return [fakes.wns.create_channel(principal) for _ in range(MINTED_TOKENS)]


def _mpns_tokens(fakes: FakeProviders, principal: str, credential: str) -> list[str]:
    return [fakes.mpns.create_channel(principal) for _ in range(MINTED_TOKENS)]


def _baidu_tokens(fakes: FakeProviders, principal: str, credential: str) -> list[str]:
    channel_id = str(secrets.randbelow(9 * 10**18) + 10**18)
    return [f"{channel_id} (or any channel id: digits)"]


def _webpush_tokens(fakes: FakeProviders, principal: str, credential: str) -> list[str]:
    public_key = _vapid(fakes, principal, credential)["VapidPublicKey"]
    return [
        json.dumps(fakes.webpush.create_subscription(public_key), separators=(",", ":"))
        for _ in range(MINTED_TOKENS)
    ]


def _vapid(fakes: FakeProviders, subject: str, private_key_pem: str | None) -> dict[str, str]:
    return fakes.webpush.create_vapid_credentials(subject, private_key_pem)


def _new_vapid(fakes: FakeProviders) -> tuple[str, str]:
    attributes = fakes.webpush.create_vapid_credentials()
    return attributes["PlatformPrincipal"], attributes["PlatformCredential"]


def _nothing_to_register(fakes: FakeProviders, principal: str, credential: str) -> None:
    """The fake takes the pair without being told: MPNS trusts every certificate of the
    (reused) CA, Web Push every VAPID key."""


def _mpns_details(fakes: FakeProviders, directory: Path, certificate: str, key: str) -> list[str]:
    """The PEM certificate and key as files too, for curl and openssl."""
    certificate_path, key_path = directory / MPNS_CERTIFICATE_FILE, directory / MPNS_KEY_FILE
    _write_secret(certificate_path, certificate)
    _write_secret(key_path, key)
    return [_line("certificate", certificate_path), _line("key file", key_path)]


def _webpush_details(
    fakes: FakeProviders, directory: Path, subject: str, private_key_pem: str
) -> list[str]:
    public_key = _vapid(fakes, subject, private_key_pem)["VapidPublicKey"]
    return [_line("subject", subject), _line("public key", public_key)]


PAIR_PLATFORMS = (
    PairPlatform(
        "ADM",
        "Amazon Device Messaging",
        "client id",
        "client secret",
        lambda fakes: fakes.adm.create_client(),
        lambda fakes, principal, credential: fakes.adm.register_client(principal, credential),
        _adm_tokens,
    ),
    PairPlatform(
        "HMS",
        "Huawei Push Kit",
        "app id",
        "app secret",
        lambda fakes: fakes.hms.create_app(),
        lambda fakes, principal, credential: fakes.hms.register_app(principal, credential),
        _hms_tokens,
    ),
    PairPlatform(
        "WNS",
        "Windows Push Notification Services",
        "package SID",
        "client secret",
        lambda fakes: fakes.wns.create_app(),
        lambda fakes, principal, credential: fakes.wns.register_app(principal, credential),
        _wns_tokens,
    ),
    PairPlatform(
        "MPNS",
        "Microsoft Push Notification Service, authenticated: a TLS client certificate",
        "certificate",
        "private key",
        lambda fakes: fakes.mpns.create_service(MPNS_SERVICE),
        _nothing_to_register,
        _mpns_tokens,
        _mpns_details,
    ),
    PairPlatform(
        "BAIDU",
        "Baidu Cloud Push",
        "API key",
        "secret key",
        lambda fakes: fakes.baidu.create_app(),
        lambda fakes, principal, credential: fakes.baidu.register_app(principal, credential),
        _baidu_tokens,
    ),
    PairPlatform(
        "WEBPUSH",
        "Web Push with VAPID",
        "subject",
        "private key",
        _new_vapid,
        _nothing_to_register,
        _webpush_tokens,
        _webpush_details,
    ),
)


def _line(label: str, value: object) -> str:
    """One indented ``label: value`` line of a platform's block."""
    return f"  {label + ':':<14} {value}"


def _write_secret(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def _write_attributes(path: Path, attributes: dict[str, str]) -> None:
    """SNS CreatePlatformApplication attributes, for ``--attributes file://...``."""
    _write_secret(path, json.dumps(attributes, indent=2) + "\n")


def _apns_key(fakes: FakeProviders, directory: Path) -> ApnsKeyFile:
    """The signing key from an earlier run, else a new one; registered with the fakes."""
    meta_path = directory / APNS_KEY_FILE
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        path = directory / meta["key_file"]
        if path.exists():
            fakes.apns.register_key_pem(
                meta["key_id"], meta["team_id"], path.read_text(), [meta["bundle_id"]]
            )
            return ApnsKeyFile(path, meta["key_id"], meta["team_id"], meta["bundle_id"])
    key = fakes.apns.register_key(TEAM_ID, [BUNDLE_ID])
    path = directory / f"AuthKey_{key.key_id}.p8"
    _write_secret(path, key.private_key_pem)
    meta = {"key_file": path.name, "key_id": key.key_id, "team_id": TEAM_ID, "bundle_id": BUNDLE_ID}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return ApnsKeyFile(path, key.key_id, TEAM_ID, BUNDLE_ID)


def _service_account(fakes: FakeProviders, directory: Path) -> tuple[Path, dict[str, str]]:
    """The service account from an earlier run (its token_uri updated), else a new one."""
    path = directory / SERVICE_ACCOUNT_FILE
    if path.exists():
        info: dict[str, str] = json.loads(path.read_text())
        info["token_uri"] = fakes.fcm.token_uri
        fakes.fcm.register_service_account(info)
    else:
        info = fakes.fcm.create_service_account(PROJECT_ID)
    _write_secret(path, json.dumps(info, indent=2) + "\n")
    return path, info


def _pair(fakes: FakeProviders, directory: Path, platform: PairPlatform) -> tuple[str, str]:
    """The platform's pair from its attributes file of an earlier run, registered with its
    fake; else a new pair, saved there."""
    path = directory / platform.attributes_file
    if path.exists():
        saved = json.loads(path.read_text())
        principal, credential = saved["PlatformPrincipal"], saved["PlatformCredential"]
        platform.register(fakes, principal, credential)
    else:
        principal, credential = platform.create(fakes)
        _write_attributes(path, {"PlatformPrincipal": principal, "PlatformCredential": credential})
    return principal, credential


def _apple_and_google(
    directory: Path, key: ApnsKeyFile, account_path: Path, account: dict[str, str]
) -> list[str]:
    apns_attributes, fcm_attributes = (
        directory / APNS_ATTRIBUTES_FILE,
        directory / FCM_ATTRIBUTES_FILE,
    )
    _write_attributes(
        apns_attributes,
        {
            "PlatformCredential": key.path.read_text(),
            "PlatformPrincipal": key.key_id,
            "ApplePlatformTeamID": key.team_id,
            "ApplePlatformBundleID": key.bundle_id,
        },
    )
    _write_attributes(fcm_attributes, {"PlatformCredential": json.dumps(account)})
    return [
        "APNS and APNS_SANDBOX: Apple Push Notification service, token auth",
        _line("attributes", apns_attributes),
        _line("key file", key.path),
        _line("key id", key.key_id),
        _line("team id", key.team_id),
        _line("bundle id", key.bundle_id),
        _line("token", f"{secrets.token_hex(32)} (or any 64 hex characters)"),
        "GCM: Firebase Cloud Messaging (HTTP v1)",
        _line("attributes", fcm_attributes),
        _line("service account", f"{account_path} (project {account['project_id']})"),
        _line("token", f"{secrets.token_urlsafe(48)} (or any 20+ characters [A-Za-z0-9_:-])"),
    ]


def _pair_block(fakes: FakeProviders, directory: Path, platform: PairPlatform) -> list[str]:
    principal, credential = _pair(fakes, directory, platform)
    lines = [
        f"{platform.platform}: {platform.title}",
        _line("attributes", directory / platform.attributes_file),
    ]
    if platform.details is not None:
        lines += platform.details(fakes, directory, principal, credential)
    else:
        lines += [_line(platform.principal, principal), _line(platform.credential, credential)]
    lines += [_line("token", token) for token in platform.tokens(fakes, principal, credential)]
    return lines


def _report(fakes: FakeProviders, directory: Path, platforms: list[str]) -> list[str]:
    return [
        f"pushgate fake providers: strict fakes of every platform, data in {directory}",
        "",
        "# Point a pushgate server at them:",
        *(f"export {name}={shlex.quote(value)}" for name, value in fakes.env().items()),
        "",
        f"CA certificate: {fakes.ca_file}",
        "",
        "Create each platform application with the AWS CLI against `pushgate serve` "
        "(started with the exports above, access key from `pushgate keys create`): "
        "`aws sns create-platform-application --endpoint-url http://127.0.0.1:4575 "
        "--name demo --platform PLATFORM --attributes file://ATTRIBUTES`; then create "
        "endpoints with its tokens and publish.",
        "",
        *platforms,
        "",
        READY,
    ]


def _prepare(fakes: FakeProviders, directory: Path) -> list[str]:
    """Credentials reused or made, the fakes told, tokens minted: the lines to print."""
    fakes.adm.accept_unknown_registrations = True  # a demo takes any well-formed token
    fakes.baidu.accept_unknown_channels = True
    key = _apns_key(fakes, directory)
    account_path, account = _service_account(fakes, directory)
    platforms = _apple_and_google(directory, key, account_path, account)
    for platform in PAIR_PLATFORMS:
        platforms += _pair_block(fakes, directory, platform)
    return _report(fakes, directory, platforms)


def run(port_base: int, directory: Path, echo: Callable[[str], None] = print) -> None:
    """Serve until SIGINT or SIGTERM. Raises OSError when a port is taken."""
    directory.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ca = FakeCA.load_or_create(directory)
        with FakeProviders.start(directory, port_base=port_base, ca=ca) as fakes:
            for line in _prepare(fakes, directory):
                echo(line)
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
        echo("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
