"""``pushgate fake-providers`` as a user runs it: a subprocess on fixed ports, every
printed credential and token used by an independent HTTP client (a token grant for the
OAuth platforms, a send on every platform), then SIGTERM; and a restart that keeps them."""

from __future__ import annotations

import json
import os
import queue
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from pushgate.providers.baidu import USER_AGENT, sign
from tests.fakes import encrypt, granted_token, trusting

READY = "Serving; press Ctrl-C to stop."
FAKES = 9  # consecutive ports, from --port-base
PLATFORMS = ("APNS", "GCM", "ADM", "HMS", "WNS", "MPNS", "BAIDU", "WEBPUSH")
TOAST = (
    b'<toast><visual><binding template="ToastGeneric"><text>hi</text></binding></visual></toast>'
)
MPNS_TOAST = (
    b'<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
    b"<wp:Toast><wp:Text1>hi</wp:Text1></wp:Toast></wp:Notification>"
)


def free_port_base() -> int:
    """A port N with the :data:`FAKES` ports from N free."""
    for _ in range(50):
        base = random.randrange(20000, 60000)
        sockets = []
        try:
            for offset in range(FAKES):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {FAKES} consecutive free ports")


@dataclass
class Running:
    process: subprocess.Popen[str]
    lines: list[str]
    rest: queue.Queue[str | None]

    def value(self, label: str) -> str:
        for line in self.lines:
            match = re.fullmatch(rf"\s*{re.escape(label)}:\s+(\S+).*", line)
            if match:
                return match[1]
        raise AssertionError(f"no {label!r} line in {self.lines}")

    def block(self, platform: str) -> dict[str, list[str]]:
        """The ``label: value`` lines under the line that starts with ``platform``: each
        label's values (the first word of each), in order."""
        header = re.compile(rf"{re.escape(platform)}[ :]")
        start = next(i for i, line in enumerate(self.lines) if header.match(line))
        values: dict[str, list[str]] = {}
        for line in self.lines[start + 1 :]:
            match = re.fullmatch(r"  ([A-Za-z ]+):\s+(\S+).*", line)
            if match is None:
                break
            values.setdefault(match[1], []).append(match[2])
        return values

    def exports(self) -> dict[str, str]:
        pairs = (line.removeprefix("export ").split("=", 1) for line in self.lines)
        return {p[0]: p[1] for p in pairs if len(p) == 2 and p[0].startswith("PUSHGATE_")}

    def stop(self) -> str:
        """SIGTERM; the rest of the output once it exited."""
        self.process.terminate()
        assert self.process.wait(10) == 0
        rest = []
        while (line := self.rest.get(timeout=5)) is not None:
            rest.append(line)
        return "\n".join(rest)


def start(port_base: int, data_dir: Path) -> Running:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    command = [sys.executable, "-m", "pushgate.cli", "fake-providers"]
    process = subprocess.Popen(
        [*command, "--port-base", str(port_base), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    out: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            out.put(line.rstrip("\n"))
        out.put(None)
        process.stdout.close()

    threading.Thread(target=pump, daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while READY not in lines:
        try:
            line = out.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            line = None
        if line is None:
            process.kill()
            process.wait()
            raise AssertionError("fake-providers did not start:\n" + "\n".join(lines))
        lines.append(line)
    return Running(process, lines, out)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Running, int, Path]]:
    port_base, data_dir = free_port_base(), tmp_path / "fakes"
    run = start(port_base, data_dir)
    try:
        yield run, port_base, data_dir
    finally:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.fixture
async def client(running: tuple[Running, int, Path]) -> AsyncIterator[httpx.AsyncClient]:
    """A client that trusts the printed CA (HTTP/2 where the fake offers it)."""
    ca_file = Path(running[0].value("CA certificate"))
    async with httpx.AsyncClient(
        http2=True, verify=trusting(ca_file), trust_env=False, timeout=5
    ) as c:
        yield c


def text(path: str | Path) -> str:
    """A file the command wrote. Read in a plain function: blocking is harmless in these
    tests, whose loop runs nothing else, but the async checks leave it to helpers."""
    return Path(path).read_text()


def private(path: str | Path) -> bool:
    """Whether only the owner may read and write ``path``."""
    return Path(path).stat().st_mode & 0o777 == 0o600


def attributes(run: Running, platform: str) -> dict[str, str]:
    """The platform's ``create-platform-application`` attributes file, as printed."""
    attributes: dict[str, str] = json.loads(text(run.block(platform)["attributes"][0]))
    return attributes


async def printed_pair_token(
    run: Running, client: httpx.AsyncClient, platform: str, label: str, token_url: str, **form: str
) -> str:
    """The access token that ``platform``'s saved pair gets, its principal printed as
    ``label``."""
    pair = attributes(run, platform)
    assert run.block(platform)[label] == [pair["PlatformPrincipal"]]
    return await granted_token(
        client,
        token_url,
        client_id=pair["PlatformPrincipal"],
        client_secret=pair["PlatformCredential"],
        **form,
    )


# -- one check a platform: the printed credentials get a token and the tokens a send ------


async def check_apns(run: Running, client: httpx.AsyncClient) -> None:
    block, env = run.block("APNS"), run.exports()
    key_pem = text(block["key file"][0])
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert attributes(run, "APNS")["PlatformCredential"] == key_pem
    token = jwt.encode(
        {"iss": block["team id"][0], "iat": int(time.time())},
        key_pem,
        algorithm="ES256",
        headers={"kid": block["key id"][0]},
    )
    for url in (env["PUSHGATE_APNS_URL"], env["PUSHGATE_APNS_SANDBOX_URL"]):
        response = await client.post(
            f"{url}/3/device/{block['token'][0]}",
            headers={
                "authorization": f"bearer {token}",
                "apns-topic": block["bundle id"][0],
                "apns-push-type": "alert",
            },
            content=b'{"aps":{"alert":"hi"}}',
        )
        assert response.status_code == 200, response.text


async def check_fcm(run: Running, client: httpx.AsyncClient) -> None:
    block, env = run.block("GCM"), run.exports()
    account = json.loads(text(block["service account"][0]))
    assert json.loads(attributes(run, "GCM")["PlatformCredential"]) == account
    assert account["token_uri"] == env["PUSHGATE_FCM_URL"] + "/token"
    now = int(time.time())
    claims = {
        "iss": account["client_email"],
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": now,
        "exp": now + 3600,
    }
    assertion = jwt.encode(claims, account["private_key"], algorithm="RS256")
    granted = await client.post(
        account["token_uri"],
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )
    sent = await client.post(
        f"{env['PUSHGATE_FCM_URL']}/v1/projects/{account['project_id']}/messages:send",
        headers={"authorization": f"Bearer {granted.json()['access_token']}"},
        json={"message": {"token": block["token"][0], "notification": {"title": "hi"}}},
    )
    assert sent.status_code == 200, sent.text


async def check_adm(run: Running, client: httpx.AsyncClient) -> None:
    block, env = run.block("ADM"), run.exports()
    access_token = await printed_pair_token(
        run, client, "ADM", "client id", env["PUSHGATE_ADM_TOKEN_URL"], scope="messaging:push"
    )
    for registration_id in (block["token"][0], "any-well-formed-registration-id"):
        sent = await client.post(
            f"{env['PUSHGATE_ADM_URL']}/messaging/registrations/{registration_id}/messages",
            headers={
                "authorization": f"Bearer {access_token}",
                "accept": "application/json",
                "x-amzn-type-version": "com.amazon.device.messaging.ADMMessage@1.0",
                "x-amzn-accept-type": "com.amazon.device.messaging.ADMSendResult@1.0",
            },
            json={"data": {"message": "hi"}},
        )
        assert sent.json() == {"registrationID": registration_id}


async def check_hms(run: Running, client: httpx.AsyncClient) -> None:
    block, env = run.block("HMS"), run.exports()
    app_id = block["app id"][0]
    access_token = await printed_pair_token(
        run, client, "HMS", "app id", env["PUSHGATE_HMS_TOKEN_URL"]
    )
    sent = await client.post(
        f"{env['PUSHGATE_HMS_URL']}/v1/{app_id}/messages:send",
        headers={"authorization": f"Bearer {access_token}"},
        json={"message": {"data": "{}", "token": block["token"]}},
    )
    assert (sent.status_code, sent.json()["code"]) == (200, "80000000")


async def check_wns(run: Running, client: httpx.AsyncClient) -> None:
    block, env = run.block("WNS"), run.exports()
    access_token = await printed_pair_token(
        run, client, "WNS", "package SID", env["PUSHGATE_WNS_TOKEN_URL"], scope="notify.windows.com"
    )
    assert len(block["token"]) == 3
    for channel in block["token"]:
        assert urllib.parse.urlsplit(channel).netloc == env["PUSHGATE_WNS_ALLOWED_HOSTS"]
        sent = await client.post(
            channel,
            headers={
                "authorization": f"Bearer {access_token}",
                "x-wns-type": "wns/toast",
                "content-type": "text/xml",
            },
            content=TOAST,
        )
        assert (sent.status_code, sent.headers["x-wns-status"]) == (200, "received")


async def check_mpns(run: Running, client: httpx.AsyncClient) -> None:
    block, env, pair = run.block("MPNS"), run.exports(), attributes(run, "MPNS")
    cert = Path(block["certificate"][0]), Path(block["key file"][0])
    assert (text(cert[0]), text(cert[1])) == (
        pair["PlatformPrincipal"],
        pair["PlatformCredential"],
    )
    ca_file = Path(env["PUSHGATE_PROVIDER_CA_FILE"])
    assert len(block["token"]) == 3
    async with httpx.AsyncClient(verify=trusting(ca_file, cert), trust_env=False) as service:
        for channel in block["token"]:
            assert urllib.parse.urlsplit(channel).netloc == env["PUSHGATE_MPNS_ALLOWED_HOSTS"]
            sent = await service.post(
                channel,
                headers={
                    "content-type": "text/xml",
                    "x-windowsphone-target": "toast",
                    "x-notificationclass": "2",
                },
                content=MPNS_TOAST,
            )
            assert (sent.status_code, sent.headers["x-notificationstatus"]) == (200, "Received")
    assert (await client.post(block["token"][0], content=MPNS_TOAST)).status_code == 401


async def check_baidu(run: Running, client: httpx.AsyncClient) -> None:
    block, env, pair = run.block("BAIDU"), run.exports(), attributes(run, "BAIDU")
    assert [pair["PlatformPrincipal"]] == block["API key"]
    url = env["PUSHGATE_BAIDU_URL"] + "/rest/3.0/push/single_device"
    for channel_id in (block["token"][0], "42"):
        fields = {
            "apikey": pair["PlatformPrincipal"],
            "timestamp": str(int(time.time())),
            "channel_id": channel_id,
            "msg_type": "1",
            "msg": '{"title":"T","description":"D"}',
        }
        fields["sign"] = sign("POST", url, fields, pair["PlatformCredential"])
        sent = await client.post(
            url,
            content=urllib.parse.urlencode(fields).encode(),
            headers={
                "content-type": "application/x-www-form-urlencoded;charset=utf-8",
                "user-agent": USER_AGENT,
            },
        )
        assert sent.status_code == 200, sent.text


async def check_webpush(run: Running, client: httpx.AsyncClient) -> None:
    block, env, pair = run.block("WEBPUSH"), run.exports(), attributes(run, "WEBPUSH")
    subject, key_pem = pair["PlatformPrincipal"], pair["PlatformCredential"]
    assert [subject] == block["subject"]
    tokens = [line.split(maxsplit=1)[1] for line in run.lines if line.startswith("  token:")]
    subscriptions = [json.loads(token) for token in tokens if token.startswith("{")]
    assert len(subscriptions) == 3
    for subscription in subscriptions:
        endpoint = urllib.parse.urlsplit(subscription["endpoint"])
        assert endpoint.netloc == env["PUSHGATE_WEBPUSH_ALLOWED_HOSTS"]
        claims = {"aud": f"https://{endpoint.netloc}", "exp": int(time.time()) + 3600}
        jwt_token = jwt.encode({**claims, "sub": subject}, key_pem, algorithm="ES256")
        sent = await client.post(
            subscription["endpoint"],
            headers={
                "authorization": f"vapid t={jwt_token}, k={block['public key'][0]}",
                "ttl": "60",
                "content-encoding": "aes128gcm",
            },
            content=encrypt(subscription, b'{"title":"hi"}'),
        )
        assert sent.status_code == 201, sent.text


CHECKS = (
    check_apns,
    check_fcm,
    check_adm,
    check_hms,
    check_wns,
    check_mpns,
    check_baidu,
    check_webpush,
)


async def check_every_platform(run: Running, client: httpx.AsyncClient) -> None:
    headers = [re.match(r"([A-Z][A-Za-z_ ]*): ", line) for line in run.lines]
    assert [match[1] for match in headers if match] == [
        "CA certificate",
        "APNS and APNS_SANDBOX",
        *PLATFORMS[1:],
    ]
    for check in CHECKS:
        await check(run, client)


async def test_prints_credentials_that_work_and_stops_on_sigterm(
    running: tuple[Running, int, Path], client: httpx.AsyncClient
) -> None:
    run, port_base, data_dir = running
    env = run.exports()
    assert env == {
        "PUSHGATE_APNS_URL": f"https://127.0.0.1:{port_base}",
        "PUSHGATE_APNS_SANDBOX_URL": f"https://127.0.0.1:{port_base + 1}",
        "PUSHGATE_FCM_URL": f"https://127.0.0.1:{port_base + 2}",
        "PUSHGATE_ADM_URL": f"https://127.0.0.1:{port_base + 3}",
        "PUSHGATE_ADM_TOKEN_URL": f"https://127.0.0.1:{port_base + 3}/auth/o2/token",
        "PUSHGATE_HMS_URL": f"https://127.0.0.1:{port_base + 4}",
        "PUSHGATE_HMS_TOKEN_URL": f"https://127.0.0.1:{port_base + 4}/oauth2/v3/token",
        "PUSHGATE_WEBPUSH_ALLOWED_HOSTS": f"127.0.0.1:{port_base + 5}",
        "PUSHGATE_WNS_TOKEN_URL": f"https://127.0.0.1:{port_base + 6}/accesstoken.srf",
        "PUSHGATE_WNS_ALLOWED_HOSTS": f"127.0.0.1:{port_base + 6}",
        "PUSHGATE_MPNS_ALLOWED_HOSTS": f"127.0.0.1:{port_base + 7}",
        "PUSHGATE_BAIDU_URL": f"https://127.0.0.1:{port_base + 8}",
        "PUSHGATE_PROVIDER_CA_FILE": str(data_dir.resolve() / "ca.pem"),
    }
    assert run.value("CA certificate") == env["PUSHGATE_PROVIDER_CA_FILE"]
    assert any("aws sns create-platform-application" in line for line in run.lines)
    for platform in PLATFORMS:
        path = Path(run.block(platform)["attributes"][0])
        assert path.parent.resolve() == data_dir.resolve() and private(path)
    await check_every_platform(run, client)
    assert "stopped" in run.stop()


async def test_restart_reuses_the_credentials(running: tuple[Running, int, Path]) -> None:
    run, port_base, data_dir = running
    first = {platform: attributes(run, platform) for platform in PLATFORMS}
    ca_file = Path(run.value("CA certificate"))
    ca_pem = text(ca_file)
    key_id = run.value("key id")
    run.stop()
    again = start(port_base, data_dir)
    try:
        assert again.value("key id") == key_id
        assert text(ca_file) == ca_pem
        assert {platform: attributes(again, platform) for platform in PLATFORMS} == first
        async with httpx.AsyncClient(
            http2=True, verify=trusting(ca_file), trust_env=False, timeout=5
        ) as client:
            await check_every_platform(again, client)  # the fakes were told them again
    finally:
        again.stop()
