"""``pushgate prune`` against a real database: the dry-run report, the run, the flags."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Connection, update
from typer.testing import CliRunner, Result

from pushgate.app import build_runtime
from pushgate.cli_prune import prune_app
from pushgate.domain import applications, endpoints
from pushgate.domain.arns import Scope
from pushgate.settings import Settings
from pushgate.store import endpoints as endpoint_store
from pushgate.store import migrate, outbox
from pushgate.store.tables import endpoints as e

SCOPE = Scope("123456789012", "us-east-1")
DAY = timedelta(days=1)

# Mounted the way cli.py mounts it, as `pushgate prune`.
cli = typer.Typer()
cli.add_typer(prune_app, name="prune")


@dataclass
class Seeded:
    app: str
    disabled: list[str]  # disabled 40 days ago
    recently_disabled: str  # 10 days ago
    stale: str  # token set 200 days ago, enabled
    fresh: str
    old_message: str  # settled, published 20 days ago
    new_message: str  # settled, published an hour ago


@pytest.fixture(autouse=True)
def _no_pushgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("PUSHGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def seeded(fresh_database_url: str, tmp_path: Path) -> Seeded:
    return asyncio.run(_seed(Settings(database_url=fresh_database_url, data_dir=tmp_path)))


async def _seed(settings: Settings) -> Seeded:
    rt = build_runtime(settings)
    try:
        await migrate.upgrade(rt.db)
        now = rt.clock()
        app = await applications.create(
            rt, SCOPE, f"app-{uuid.uuid4().hex[:8]}", "GCM", {"PlatformCredential": "AIzaKey"}
        )
        arns = [await endpoints.create(rt, SCOPE, app, f"tok-{i}", None, {}) for i in range(5)]
        ages: dict[str, dict[str, Any]] = {
            arns[0]: {"enabled": False, "disabled_at": now - 40 * DAY},
            arns[1]: {"enabled": False, "disabled_at": now - 40 * DAY},
            arns[2]: {"enabled": False, "disabled_at": now - 10 * DAY},
            arns[3]: {"token_updated_at": now - 200 * DAY},
        }

        def age(conn: Connection) -> None:
            for arn, values in ages.items():
                conn.execute(update(e).where(e.c.arn == arn).values(values))

        await rt.db.write(age)
        row = await rt.db.read(endpoint_store.get, arns[4])
        assert row is not None
        messages = []
        for published in (now - 20 * DAY, now - DAY / 24):
            message_id = str(uuid.uuid4())
            msg = outbox.NewMessage(
                message_id,
                "us-east-1",
                arns[4],
                None,
                "hi",
                None,
                None,
                {},
                None,
                published.timestamp(),
            )
            await rt.db.write(outbox.insert_message, msg, endpoint_ids=[row.id])
            claimed = await rt.db.write(outbox.claim_due, published.timestamp(), 1e12, 10)
            finished = [
                outbox.Finished(c.id, outbox.SENT, 200, None, None, published.timestamp(), 1.0)
                for c in claimed
            ]
            await rt.db.write(outbox.record, finished, [])
            messages.append(message_id)
        return Seeded(app, arns[:2], arns[2], arns[3], arns[4], messages[0], messages[1])
    finally:
        await rt.db.dispose()


def _prune(url: str, data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["prune", *args, "--database-url", url, "--data-dir", str(data_dir)]
    )


def _report(url: str, data_dir: Path, *args: str) -> dict[str, Any]:
    result = _prune(url, data_dir, "--json", *args)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _existing(url: str, data_dir: Path, arns: list[str]) -> list[bool]:
    async def run() -> list[bool]:
        rt = build_runtime(Settings(database_url=url, data_dir=data_dir))
        try:
            return [await rt.db.read(endpoint_store.get, arn) is not None for arn in arns]
        finally:
            await rt.db.dispose()

    return asyncio.run(run())


def test_a_dry_run_reports_and_deletes_nothing(
    seeded: Seeded, fresh_database_url: str, tmp_path: Path
) -> None:
    report = _report(fresh_database_url, tmp_path, "--dry-run")

    assert report["dryRun"] is True
    assert report["policy"] == {
        "disabledAfter": "30d",
        "staleAfter": "off",
        "messageRetention": "14d",
    }
    assert report["endpoints"] == {"disabled": 2, "stale": 0, "total": 2}
    assert report["applications"] == {
        seeded.app: {"disabled": 2, "stale": 0, "sample": seeded.disabled}
    }
    assert (report["messages"], report["deliveries"]) == (1, 1)
    all_arns = [*seeded.disabled, seeded.recently_disabled, seeded.stale, seeded.fresh]
    assert all(_existing(fresh_database_url, tmp_path, all_arns))

    table = _prune(fresh_database_url, tmp_path, "--dry-run")
    assert table.exit_code == 0, table.output
    assert "dry run" in table.stdout and "nothing was deleted" in table.stdout
    assert "would delete 2 (2 disabled for over 30d; stale rule off)" in table.stdout
    assert "would delete 1 with 1 deliveries (settled, published over 14d ago)" in table.stdout
    rows = [line.split("│") for line in table.stdout.splitlines() if line.startswith("│")]
    examples = "".join(cells[4].strip() for cells in rows)
    assert examples == "".join(seeded.disabled)  # ARNs wrap, never cut short


def test_a_run_deletes_what_the_dry_run_reported(
    seeded: Seeded, fresh_database_url: str, tmp_path: Path
) -> None:
    dry = _report(fresh_database_url, tmp_path, "--dry-run", "--stale-after", "180d")
    result = _prune(fresh_database_url, tmp_path, "--stale-after", "180d")
    assert result.exit_code == 0, result.output
    assert "deleted 3 (2 disabled for over 30d; 1 not refreshed for 180d)" in result.stdout

    assert dry["endpoints"] == {"disabled": 2, "stale": 1, "total": 3}
    assert dry["policy"]["staleAfter"] == "180d"
    assert _existing(
        fresh_database_url,
        tmp_path,
        [*seeded.disabled, seeded.stale, seeded.recently_disabled, seeded.fresh],
    ) == [False, False, False, True, True]
    after = _report(fresh_database_url, tmp_path, "--dry-run", "--stale-after", "180d")
    assert (after["endpoints"]["total"], after["messages"]) == (0, 0)


def test_flags_turn_rules_off_or_change_them(
    seeded: Seeded, fresh_database_url: str, tmp_path: Path
) -> None:
    off = _report(
        fresh_database_url, tmp_path, "--disabled-after", "off", "--message-retention", "0"
    )
    assert off["policy"] == {"disabledAfter": "off", "staleAfter": "off", "messageRetention": "off"}
    assert (off["endpoints"]["total"], off["messages"]) == (0, 0)

    wider = _report(fresh_database_url, tmp_path, "--dry-run", "--disabled-after", "1w")
    assert wider["endpoints"]["disabled"] == 3
    assert seeded.recently_disabled in wider["applications"][seeded.app]["sample"]


def test_defaults_come_from_the_settings(
    seeded: Seeded, fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSHGATE_PRUNE_DISABLED_AFTER", "50d")
    monkeypatch.setenv("PUSHGATE_PRUNE_STALE_AFTER", "100d")
    monkeypatch.setenv("PUSHGATE_MESSAGE_RETENTION", "off")

    report = _report(fresh_database_url, tmp_path, "--dry-run")

    assert report["policy"] == {
        "disabledAfter": "50d",
        "staleAfter": "100d",
        "messageRetention": "off",
    }
    assert report["endpoints"] == {"disabled": 0, "stale": 1, "total": 1}
    assert report["messages"] == 0


@pytest.mark.parametrize("flag", ["--disabled-after", "--stale-after", "--message-retention"])
def test_a_bad_duration_is_a_usage_error(flag: str, tmp_path: Path) -> None:
    result = _prune(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path, flag, "3 days")
    assert result.exit_code == 2
    assert flag in result.output and "not a duration" in result.output
    assert not (tmp_path / "unused.db").exists()  # nothing ran
