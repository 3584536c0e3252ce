"""The ``pushgate`` command: migrate, keys, the first start, the secret key file."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pushgate.store.migrate import head_revision
from tests.conftest import REGION, start_server


def pushgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushgate.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env.update({"PUSHGATE_DATABASE_URL": database_url, "PUSHGATE_DATA_DIR": str(data_dir)})
    return env


def client(url: str, key_id: str, secret: str):
    return boto3.client(
        "sns",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_migrate_then_keys_create_list_delete(database_url: str, tmp_path: Path) -> None:
    env = cli_env(database_url, tmp_path)
    migrated = pushgate("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema at revision {head_revision()}" in migrated.stdout

    created = pushgate("keys", "create", "--name", "ci", env=env)
    assert created.returncode == 0, created.stderr
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(AKIA[A-Z0-9]{16})", created.stdout)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S{40})", created.stdout)
    assert key_id and secret

    server = start_server(database_url, tmp_path)
    try:
        sns = client(server.url, key_id[1], secret[1])
        assert "Topics" in sns.list_topics()
        listed = pushgate("keys", "list", env=env)
        assert key_id[1] in listed.stdout and secret[1] not in listed.stdout

        assert pushgate("keys", "delete", key_id[1], env=env).returncode == 0
        assert pushgate("keys", "delete", key_id[1], env=env).returncode == 1
        stranger = client(server.url, "AKIAUNKNOWNKEY000000", secret[1])
        with pytest.raises(ClientError) as err:
            stranger.list_topics()
        assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    finally:
        server.stop()
    assert secret[1] not in server.log()


def test_first_start_creates_a_key_and_a_private_secret_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'first.db'}"
    server = start_server(
        url,
        tmp_path,
        {"PUSHGATE_ACCESS_KEY_ID": "", "PUSHGATE_SECRET_ACCESS_KEY": ""},
    )
    try:
        log = server.log()
        key_id = re.search(r"AWS_ACCESS_KEY_ID=(AKIA[A-Z0-9]{16})", log)
        secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S{40})", log)
        assert key_id and secret, log
        assert "Topics" in client(server.url, key_id[1], secret[1]).list_topics()
    finally:
        server.stop()
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600

    # The second start finds a key and prints none.
    again = start_server(
        url,
        tmp_path / "again",
        {
            "PUSHGATE_ACCESS_KEY_ID": "",
            "PUSHGATE_SECRET_ACCESS_KEY": "",
            "PUSHGATE_DATA_DIR": str(tmp_path),
        },
    )
    again.stop()
    assert again.log().count("AWS_SECRET_ACCESS_KEY=") == 0


def test_unknown_settings_are_reported(tmp_path: Path) -> None:
    server = start_server(
        f"sqlite:///{tmp_path / 'w.db'}", tmp_path, {"PUSHGATE_DATABSE_URL": "typo"}
    )
    server.stop()
    assert "unknown setting PUSHGATE_DATABSE_URL ignored" in server.log()


def test_workers_share_one_database(fresh_database_url: str, tmp_path: Path) -> None:
    """Two server processes on one port and one store: every write lands exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    server = start_server(fresh_database_url, tmp_path, {"PUSHGATE_WORKERS": "2"})
    try:
        sns = server.client()
        app = sns.create_platform_application(
            Name="workers", Platform="GCM", Attributes={"PlatformCredential": "AIzaKey"}
        )["PlatformApplicationArn"]

        def create(i: int) -> str:
            # Each token twice, from different threads: one endpoint per token all the same.
            return server.client().create_platform_endpoint(
                PlatformApplicationArn=app, Token=f"token-{i // 2}"
            )["EndpointArn"]

        with ThreadPoolExecutor(8) as pool:
            arns = list(pool.map(create, range(200)))
        assert all(arns[i] == arns[i + 1] for i in range(0, 200, 2))
        listed = [
            e["EndpointArn"]
            for page in sns.get_paginator("list_endpoints_by_platform_application").paginate(
                PlatformApplicationArn=app
            )
            for e in page["Endpoints"]
        ]
        assert sorted(listed) == sorted(set(arns)) and len(listed) == 100
    finally:
        server.stop()
    pids = set(re.findall(r"Started server process \[(\d+)\]", server.log()))
    assert len(pids) == 2, server.log()
