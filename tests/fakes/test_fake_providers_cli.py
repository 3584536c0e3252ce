"""``pushgate fake-providers`` as a user runs it: a subprocess on fixed ports, its printed
credentials used by an independent HTTP/2 client, then SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import random
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

READY = "Serving; press Ctrl-C to stop."
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def free_port_base() -> int:
    """A port N with N, N+1 and N+2 free."""
    for _ in range(50):
        base = random.randrange(20000, 60000)
        try:
            sockets = []
            for offset in range(3):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no three consecutive free ports")


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


def test_prints_credentials_that_work_and_stops_on_sigterm(
    running: tuple[Running, int, Path],
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
    key_id, team_id, bundle_id = (run.value(x) for x in ("key id", "team id", "bundle id"))
    key_pem = Path(run.value("key file")).read_text()
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")

    tls = ssl.create_default_context(cafile=env["PUSHGATE_PROVIDER_CA_FILE"])
    with httpx.Client(http2=True, verify=tls, trust_env=False, timeout=5) as client:
        token = jwt.encode(
            {"iss": team_id, "iat": int(time.time())},
            key_pem,
            algorithm="ES256",
            headers={"kid": key_id},
        )
        for url in (env["PUSHGATE_APNS_URL"], env["PUSHGATE_APNS_SANDBOX_URL"]):
            response = client.post(
                f"{url}/3/device/{'ab' * 32}",
                headers={
                    "authorization": f"bearer {token}",
                    "apns-topic": bundle_id,
                    "apns-push-type": "alert",
                },
                content=b'{"aps":{"alert":"hi"}}',
            )
            assert response.status_code == 200, response.text

        account = json.loads(Path(run.value("FCM service account")).read_text())
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
        granted = client.post(
            account["token_uri"],
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
        access_token = granted.json()["access_token"]
        sent = client.post(
            f"{env['PUSHGATE_FCM_URL']}/v1/projects/{account['project_id']}/messages:send",
            headers={"authorization": f"Bearer {access_token}"},
            json={"message": {"token": "t" * 40, "notification": {"title": "hi"}}},
        )
        assert sent.status_code == 200, sent.text

    assert "stopped" in run.stop()


def test_restart_reuses_the_credentials(running: tuple[Running, int, Path]) -> None:
    run, port_base, data_dir = running
    first = (run.value("key id"), run.value("FCM service account"), run.value("CA certificate"))
    ca_pem = Path(first[2]).read_text()
    account = json.loads(Path(first[1]).read_text())
    run.stop()
    again = start(port_base, data_dir)
    try:
        assert again.value("key id") == first[0]
        assert Path(first[2]).read_text() == ca_pem
        assert json.loads(Path(first[1]).read_text())["client_email"] == account["client_email"]
    finally:
        again.stop()
