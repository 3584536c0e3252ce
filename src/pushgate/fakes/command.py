"""``pushgate fake-providers``: the fakes in the foreground, with credentials to try them.

Everything lives in one data directory and is reused on the next start (the CA, the
APNs signing key, the FCM service account), so a pushgate server configured once keeps
working when the fakes restart.
"""

from __future__ import annotations

import json
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
APNS_KEY_FILE = "apns-key.json"
SERVICE_ACCOUNT_FILE = "fcm-service-account.json"
APNS_ATTRIBUTES_FILE = "apns-platform-attributes.json"
FCM_ATTRIBUTES_FILE = "fcm-platform-attributes.json"
READY = "Serving; press Ctrl-C to stop."


@dataclass(frozen=True)
class ApnsKeyFile:
    path: Path
    key_id: str
    team_id: str
    bundle_id: str


def _write_secret(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


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


def _attribute_files(
    directory: Path, key: ApnsKeyFile, account: dict[str, str]
) -> tuple[Path, Path]:
    """SNS CreatePlatformApplication attributes, for ``--attributes file://...``."""
    apns = {
        "PlatformCredential": key.path.read_text(),
        "PlatformPrincipal": key.key_id,
        "ApplePlatformTeamID": key.team_id,
        "ApplePlatformBundleID": key.bundle_id,
    }
    fcm = {"PlatformCredential": json.dumps(account)}
    apns_path, fcm_path = directory / APNS_ATTRIBUTES_FILE, directory / FCM_ATTRIBUTES_FILE
    _write_secret(apns_path, json.dumps(apns, indent=2) + "\n")
    _write_secret(fcm_path, json.dumps(fcm, indent=2) + "\n")
    return apns_path, fcm_path


def _report(
    fakes: FakeProviders,
    directory: Path,
    key: ApnsKeyFile,
    account_path: Path,
    account: dict[str, str],
) -> list[str]:
    apns_attributes, fcm_attributes = _attribute_files(directory, key, account)
    lines = [
        f"pushgate fake providers: strict fakes of APNs and FCM, data in {directory}",
        "",
        "# Point a pushgate server at them:",
        *(f"export {name}={shlex.quote(value)}" for name, value in fakes.env().items()),
        "",
        f"CA certificate: {fakes.ca_file}",
        "APNs signing key (token auth, production and sandbox):",
        f"  key file:  {key.path}",
        f"  key id:    {key.key_id}",
        f"  team id:   {key.team_id}",
        f"  bundle id: {key.bundle_id}",
        f"FCM service account: {account_path} (project {account['project_id']})",
        "",
        "Create the platform applications with the AWS CLI against `pushgate serve` "
        "(started with the exports above, access key from `pushgate keys create`): "
        "`aws sns create-platform-application --endpoint-url http://127.0.0.1:4575 "
        f"--name demo-ios --platform APNS_SANDBOX --attributes file://{apns_attributes}` and "
        "`aws sns create-platform-application --endpoint-url http://127.0.0.1:4575 "
        f"--name demo-android --platform GCM --attributes file://{fcm_attributes}`; then "
        "create endpoints with any well-formed token (64 hex characters for APNs, 20+ "
        "characters of [A-Za-z0-9_:-] for FCM) and publish.",
        "",
        READY,
    ]
    return lines


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
            key = _apns_key(fakes, directory)
            account_path, account = _service_account(fakes, directory)
            for line in _report(fakes, directory, key, account_path, account):
                echo(line)
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
        echo("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
