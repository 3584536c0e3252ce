"""Shared fixtures: real servers on free ports, on SQLite and on PostgreSQL.

PostgreSQL is the one every machine of the project runs at 127.0.0.1:5432 with trust
auth; ``PUSHGATE_TEST_POSTGRES_URL`` points elsewhere. Each server gets a database of its
own, created here and dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

POSTGRES_URL = os.environ.get(
    "PUSHGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ACCESS_KEY_ID = "AKIAPUSHGATETEST0001"
SECRET_ACCESS_KEY = "pushgate-test-secret-key-0123456789abcdef"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class PostgresDatabase:
    """A throw-away PostgreSQL database next to the shared one."""

    name: str = field(default_factory=lambda: f"pushgate_test_{uuid.uuid4().hex[:12]}")

    @property
    def url(self) -> str:
        return POSTGRES_URL.rsplit("/", 1)[0] + "/" + self.name

    def create(self) -> None:
        asyncio.run(_admin(f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


@contextlib.contextmanager
def new_database(kind: str, sqlite_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``kind``; a PostgreSQL one is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{sqlite_path}"
        return
    db = PostgresDatabase()
    db.create()
    try:
        yield db.url
    finally:
        db.drop()


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database of each kind, shared by a test module."""
    with new_database(request.param, tmp_path_factory.mktemp("sqlite") / "pushgate.db") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like ``database_url``, but new for each test (its keys encrypted under its own key)."""
    with new_database(request.param, tmp_path / "fresh.db") as url:
        yield url


@dataclass
class Server:
    """A ``pushgate serve`` process and how to reach it."""

    url: str
    database_url: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, service: str = "sns", **kwargs: Any) -> Any:
        params: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": REGION,
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
            "config": Config(retries={"max_attempts": 1, "mode": "standard"}),
        }
        params.update(kwargs)
        return boto3.client(service, **params)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Every server the tests started: one a test left running (interrupted, timed out, or an
# error between start and the fixture's finally) is stopped when pytest exits.
_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _stop_leftover_servers() -> None:
    for process in _STARTED:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_server(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env.update(
        {
            "PUSHGATE_DATABASE_URL": database_url,
            "PUSHGATE_DATA_DIR": str(data_dir),
            "PUSHGATE_PORT": str(port),
            "PUSHGATE_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "PUSHGATE_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            # The hooks that subscription tests subscribe but never serve: loopback port 9
            # (discard), which nothing listens on. Loopback is refused unless allowed.
            "PUSHGATE_SUBSCRIPTION_ALLOWED_HOSTS": "127.0.0.1:9",
        }
    )
    env.update(extra_env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "pushgate.cli", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    _STARTED.append(process)
    # Serving TLS (PUSHGATE_TLS_CERT_FILE): by the name its certificate carries.
    tls = "PUSHGATE_TLS_CERT_FILE" in env
    url = f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"
    ca_file = env.get("PUSHGATE_PROVIDER_CA_FILE")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    server = Server(url, database_url, data_dir, env, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pushgate serve exited:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1, verify=verify).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"pushgate serve did not become ready:\n{server.log()}")


@contextlib.contextmanager
def running_server(
    database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """:func:`start_server` for the duration of the block."""
    srv = start_server(database_url, data_dir, extra_env)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running server on each kind of database, shared by a test module."""
    with running_server(database_url, tmp_path_factory.mktemp("data")) as srv:
        yield srv


@pytest.fixture(scope="module")
def sns(server: Server) -> Any:
    """A boto3 SNS client for the module's server, retries off so that every call counts."""
    return server.client()


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
