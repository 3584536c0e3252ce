"""``pushgate prune``: delete stale endpoints and old messages now, or show what would go.

The same pruning the worker role runs every ``PUSHGATE_PRUNE_INTERVAL``; each rule
defaults to its setting, and a flag overrides it for this run.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pushgate.app import build_runtime
from pushgate.domain.pruning import PrunePolicy, PruneReport, format_duration, parse_duration, prune
from pushgate.jobs import prune_policy
from pushgate.settings import Settings
from pushgate.store import migrate as migrations

prune_app = typer.Typer(help="Delete stale endpoints and old messages (beyond SNS).")
console = Console()


def _duration_option(flag: str, env: str, default: str, what: str) -> Any:
    return typer.Option(
        flag,
        help=f"{what}, e.g. 30d, 12h, 1d12h; 0 or off: never (env {env}, default {default})",
        show_default=False,
    )


def _duration(flag: str, value: str | None, default: timedelta | None) -> timedelta | None:
    """The flag's duration if it was given (None when it turns the rule off), else the
    setting's."""
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


@prune_app.callback(invoke_without_command=True)
def prune_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing")
    ] = False,
    disabled_after: Annotated[
        str | None,
        _duration_option(
            "--disabled-after",
            "PUSHGATE_PRUNE_DISABLED_AFTER",
            "30d",
            "Delete endpoints disabled for longer than this",
        ),
    ] = None,
    stale_after: Annotated[
        str | None,
        _duration_option(
            "--stale-after",
            "PUSHGATE_PRUNE_STALE_AFTER",
            "off",
            "Delete endpoints whose token was not refreshed for this long",
        ),
    ] = None,
    message_retention: Annotated[
        str | None,
        _duration_option(
            "--message-retention",
            "PUSHGATE_MESSAGE_RETENTION",
            "14d",
            "Delete settled messages and their deliveries published longer ago than this",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="sqlite:///path or postgresql://user@host/db (env PUSHGATE_DATABASE_URL, "
            "default SQLite in the data dir)",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory (env PUSHGATE_DATA_DIR, default ./pushgate-data)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Delete endpoints disabled or not refreshed for too long, and settled messages past
    retention; with --dry-run, only report what would be deleted."""
    flags: dict[str, Any] = {"database_url": database_url, "data_dir": data_dir}
    settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    defaults = prune_policy(settings)
    try:
        policy = PrunePolicy(
            disabled_after=_duration("--disabled-after", disabled_after, defaults.disabled_after),
            stale_after=_duration("--stale-after", stale_after, defaults.stale_after),
            message_retention=_duration(
                "--message-retention", message_retention, defaults.message_retention
            ),
        )
    except ValueError as exc:  # a setting that is not positive
        raise typer.BadParameter(str(exc)) from None
    report = asyncio.run(_run(settings, policy, dry_run))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print(report)


async def _run(settings: Settings, policy: PrunePolicy, dry_run: bool) -> PruneReport:
    rt = build_runtime(settings)
    try:
        await migrations.upgrade(rt.db)
        return await prune(rt, policy, dry_run=dry_run)
    finally:
        await rt.db.dispose()


def _print(report: PruneReport) -> None:
    policy = report.policy
    verb = "would delete" if report.dry_run else "deleted"
    if report.dry_run:
        console.print("[bold]dry run[/bold]: nothing was deleted")
    rules = [
        f"{report.disabled} disabled for over {format_duration(policy.disabled_after)}"
        if policy.disabled_after is not None
        else "disabled rule off",
        f"{report.stale} not refreshed for {format_duration(policy.stale_after)}"
        if policy.stale_after is not None
        else "stale rule off",
    ]
    console.print(f"endpoints: {verb} {report.endpoints} ({'; '.join(rules)})")
    if report.applications:
        table = Table()
        # ARNs are long: wrapped, never cut short, so that a sample can be copied.
        table.add_column("application", overflow="fold")
        table.add_column("disabled", justify="right")
        table.add_column("stale", justify="right")
        table.add_column("for example", overflow="fold")
        for arn, app in sorted(report.applications.items()):
            table.add_row(arn, str(app.disabled), str(app.stale), "\n".join(app.sample))
        console.print(table)
    if policy.message_retention is None:
        console.print("messages: retention off, none deleted")
    else:
        console.print(
            f"messages: {verb} {report.messages} with {report.deliveries} deliveries "
            f"(settled, published over {format_duration(policy.message_retention)} ago)"
        )
