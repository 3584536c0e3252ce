"""The ``pushgate`` command: serve, keys, migrate.

Each flag falls back to its ``PUSHGATE_*`` variable, then to the default; the help text
names the variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pushgate import logs
from pushgate.app import build_runtime, create_app, prepare
from pushgate.cli_prune import prune_app
from pushgate.crypto import SecretKeyMismatch
from pushgate.domain import (
    access_keys,
    delivery_logs,
    message_status,
    publish,
    registrations,
)
from pushgate.domain.arns import Scope
from pushgate.domain.errors import SnsError
from pushgate.domain.messages import parse_message_attributes
from pushgate.domain.runtime import Runtime
from pushgate.settings import Settings, forward
from pushgate.store import migrate as migrations

app = typer.Typer(help="pushgate: self-hosted mobile push with an Amazon SNS-compatible API.")
keys_app = typer.Typer(help="Access keys for SigV4 (boto3, the AWS CLI, every AWS SDK).")
app.add_typer(keys_app, name="keys")
messages_app = typer.Typer(help="Published messages and the state of their deliveries.")
app.add_typer(messages_app, name="messages")
app.add_typer(prune_app, name="prune")
users_app = typer.Typer(help="Users of the registration service and their devices.")
app.add_typer(users_app, name="users")
console = Console()

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///path or postgresql://user@host/db (env PUSHGATE_DATABASE_URL; "
        "default SQLite in the data dir)",
        show_default=False,
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (env PUSHGATE_DATA_DIR; default ./pushgate-data)",
        show_default=False,
    ),
]


def _settings(**flags: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    return Settings(**{k: v for k, v in flags.items() if v is not None})


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (env PUSHGATE_HOST; default 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (env PUSHGATE_PORT; default 4575)")] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    role: Annotated[
        str | None,
        typer.Option(help="all | api | worker (env PUSHGATE_ROLE; default all)"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes sharing the port; SQLite and PostgreSQL alike "
            "(env PUSHGATE_WORKERS; default 1)"
        ),
    ] = None,
) -> None:
    """Run the SNS API, the REST API and the delivery workers."""
    import uvicorn

    settings = _settings(
        host=host,
        port=port,
        database_url=database_url,
        data_dir=data_dir,
        role=role,
        workers=workers,
    )
    logs.configure(settings.log_level)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "lifespan": "on",
    }
    if settings.tls_cert_file is not None:
        common["ssl_certfile"] = str(settings.tls_cert_file)
        common["ssl_keyfile"] = str(settings.tls_key_file or settings.tls_cert_file)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    try:
        asyncio.run(prepare(settings))
    except SecretKeyMismatch as exc:
        typer.echo(f"pushgate: cannot start: {exc}", err=True)
        raise typer.Exit(1) from None
    forward(settings)
    uvicorn.run("pushgate.app:create_worker_app", factory=True, workers=settings.workers, **common)


@app.command()
def migrate(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Bring the database schema to the newest version."""
    settings = _settings(database_url=database_url, data_dir=data_dir)

    async def run() -> str | None:
        rt = build_runtime(settings)
        try:
            return await migrations.upgrade(rt.db)
        finally:
            await rt.db.dispose()

    console.print(f"schema at revision {asyncio.run(run())}")


def _with_runtime(settings: Settings, fn: Any) -> Any:
    async def run() -> Any:
        rt = build_runtime(settings)
        try:
            await migrations.upgrade(rt.db)
            return await fn(rt)
        finally:
            await rt.db.dispose()

    return asyncio.run(run())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label to recognise the key by")] = "",
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Create an access key and print its id and secret (shown only once)."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    key = _with_runtime(settings, lambda rt: access_keys.create(rt, name))
    typer.echo(f"AWS_ACCESS_KEY_ID={key.access_key_id}")
    typer.echo(f"AWS_SECRET_ACCESS_KEY={key.secret_access_key}")


@keys_app.command("list")
def keys_list(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """List access key ids (never their secrets)."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    rows = _with_runtime(settings, access_keys.list_keys)
    table = Table("access key id", "name", "created")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@keys_app.command("delete")
def keys_delete(
    access_key_id: str, database_url: DatabaseUrl = None, data_dir: DataDir = None
) -> None:
    """Delete an access key; requests signed with it fail within a minute."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    if not _with_runtime(settings, lambda rt: access_keys.delete(rt, access_key_id)):
        console.print(f"no access key {access_key_id}")
        raise typer.Exit(1)
    console.print(f"deleted {access_key_id}")


@messages_app.command("show")
def messages_show(
    message_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON")] = False,
    limit: Annotated[int, typer.Option(help="Deliveries to list", min=1, max=1000)] = 100,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Where each delivery of a message stands: queued, sent, failed (and why), expired."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    status = _with_runtime(settings, lambda rt: message_status.get(rt, message_id, limit=limit))
    if status is None:
        console.print(f"no message {message_id}")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    counts = ", ".join(f"{n} {state}" for state, n in status["counts"].items())
    console.print(f"message {status['messageId']} to {status['target']}")
    fanout = "" if status["fanoutComplete"] else " (fan-out in progress)"
    console.print(f"published {status['publishedAt']}: {status['deliveries']} deliveries{fanout}")
    console.print(counts)
    table = Table("endpoint", "state", "attempts", "status", "reason", "latency ms", "finished")
    for item in status["items"]:
        table.add_row(
            item["endpoint"] or "(deleted)",
            item["state"],
            str(item["attempts"]),
            "" if item["statusCode"] is None else str(item["statusCode"]),
            item["reason"] or "",
            "" if item["latencyMs"] is None else f"{item['latencyMs']:.1f}",
            item["finishedAt"] or item["nextAttemptAt"] or "",
        )
    console.print(table)


@users_app.command("devices")
def users_devices(
    user: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the devices as JSON")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """A user's devices (their endpoints), across applications."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    found = _with_runtime(settings, lambda rt: registrations.devices(rt, user))
    rows = [
        {
            "endpointArn": d.endpoint.arn,
            "platform": d.platform,
            "deviceId": d.endpoint.device_id,
            "enabled": d.endpoint.enabled,
            "updatedAt": d.updated_at.isoformat(),
        }
        for d in found
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("endpoint", "platform", "device id", "enabled", "updated")
    for row in rows:
        table.add_row(
            row["endpointArn"],
            row["platform"],
            row["deviceId"] or "",
            "yes" if row["enabled"] else "no",
            row["updatedAt"],
        )
    console.print(table)


@users_app.command("publish")
def users_publish(
    user: str,
    message: str,
    structure: Annotated[
        bool,
        typer.Option("--json-structure", help="MESSAGE is SNS's JSON: a payload per platform"),
    ] = False,
    subject: Annotated[str | None, typer.Option(help="the message's subject")] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            help="a String message attribute NAME=VALUE, e.g. AWS.SNS.MOBILE.APNS.PRIORITY=5"
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Send one message to every enabled device of USER; prints the message id."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    given: dict[str, dict[str, str]] = {}
    for item in attribute or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--attribute")
        given[name] = {"DataType": "String", "StringValue": value}
    scope = Scope(settings.account_id, settings.region)

    async def send(rt: Runtime) -> publish.PublishedToUser:
        msg = publish.PublishInput(
            message=message,
            subject=subject,
            structure="json" if structure else None,
            attributes=parse_message_attributes(given),
        )
        return await publish.publish_to_user(rt, scope, user, msg)

    try:
        sent = _with_runtime(settings, send)
    except SnsError as exc:
        typer.echo(f"pushgate: {exc.message}", err=True)
        raise typer.Exit(1) from None
    console.print(f"message {sent.message_id} to {sent.devices} devices of {user}")
    console.print(f"follow it with: pushgate messages show {sent.message_id}")


@users_app.command("remove")
def users_remove(user: str, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Delete every endpoint of USER (logout everywhere, or account deletion)."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    removed = _with_runtime(settings, lambda rt: registrations.remove_user(rt, user))
    console.print(f"removed {len(removed)} endpoints of {user}")


@app.command("logs")
def delivery_logs_command(
    application: Annotated[
        str | None, typer.Option("--app", help="Only this platform application (ARN)")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="SUCCESS or FAILURE", show_default=False)
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records (Ctrl-C stops)")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One SNS-shaped JSON object per line")
    ] = False,
    show_tokens: Annotated[
        bool, typer.Option("--show-tokens", help="Print device tokens in full, not masked")
    ] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Delivery status logs (applications with SuccessFeedbackRoleArn or
    FailureFeedbackRoleArn), oldest first; device tokens masked unless --show-tokens."""
    if status is not None and status.upper() not in (delivery_logs.SUCCESS, delivery_logs.FAILURE):
        raise typer.BadParameter("SUCCESS or FAILURE", param_hint="--status")
    settings = _settings(database_url=database_url, data_dir=data_dir)

    async def tail(rt: Runtime) -> None:
        after = 0
        while True:
            query = delivery_logs.LogFilter(
                application_arn=application,
                status=status.upper() if status else None,
                after=after,
                limit=500,
            )
            items, cursor = await delivery_logs.page(rt, query, show_tokens=show_tokens)
            for item in items:
                typer.echo(json.dumps(item) if as_json else delivery_logs.one_line(item))
            after = int(items[-1]["id"]) if items else after
            if cursor is None:
                if not follow:
                    return
                await asyncio.sleep(1.0)

    with contextlib.suppress(KeyboardInterrupt):
        _with_runtime(settings, tail)


@app.command("fake-providers")
def fake_providers(
    port_base: Annotated[
        int,
        typer.Option(help="the first port; the fakes take consecutive ports from it"),
    ] = 4600,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where the CA, keys and service account are kept and reused "
            "(default: fake-providers/ in the data dir, env PUSHGATE_DATA_DIR)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a strict fake of every push provider and print how to point pushgate at them."""
    from pushgate.fakes import command

    directory = data_dir or _settings().data_dir / "fake-providers"
    try:
        command.run(port_base, directory.resolve(), typer.echo)
    except OSError as exc:
        typer.echo(f"pushgate: cannot start the fake providers: {exc}", err=True)
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
