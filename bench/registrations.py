"""Registration benchmark: ``POST /v1/registrations`` under load, as apps call it (issue 6).

One command runs every target and prints a table::

    python bench/registrations.py [--ref HEAD] [--write-readme] [--profile]

Targets: ``pushgate serve`` on SQLite (one process, and ``--workers 2``) and on PostgreSQL
(``--workers 2``, a throw-away database). Each request is what a mobile app sends after
login: the user's OpenID Connect ID token (RS256, minted ahead by a local issuer that
serves its JWKS over HTTP; 1,000 users, cycled), an APNs device token (64 hex) and a
device id. Side by side in the same run, the same requests with an access key (HTTP
Basic, the user named in the body) show what verifying the identity token costs.

Per target, for each way of calling (``oidc``, ``key``):

* ``create-max``: wrk replays registrations of new devices (a distinct token and device id
  each: every request creates an endpoint, as in a burst of new installs) as fast as the
  server answers;
* ``re-register-max``: wrk replays the registrations of the devices that ``create-max``
  created, unchanged: the call after every login, an update;
* ``create @500/s`` and ``re-register @500/s``: control_plane.py's open-loop generator
  (asyncio, keep-alive sockets, latency from each request's *scheduled* send time) at a
  fixed rate, new devices, then the same devices again.

After each phase the application's endpoints are listed through the SNS API and their
count compared with the answers: a create phase must have made one endpoint per 201 (the
paced generator tells only 200 from the rest, so there every answer must have made one),
a re-register phase none, and all its answers must be 200. Servers, databases and the
retry-when-the-machine-is-busy logic come from ``control_plane.py``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from control_plane import (
    ACCESS_KEY_ID,
    HOST,
    README,
    REPO,
    RESULTS_DIR,
    SECRET_ACCESS_KEY,
    CpuMeter,
    Plan,
    Row,
    Server,
    Target,
    TargetRun,
    WrkSettings,
    _interrupt,
    export_source,
    fmt_ms,
    log,
    machine,
    make_target,
    one_line,
    percentile,
    profile_text,
    replace_readme_block,
    run_paced,
    running,
    sns_client,
    table,
    wait_for_quiet,
    write_requests,
)
from delivery import BUNDLE_ID, KEY_ID, TEAM_ID, apns_signing_key

if TYPE_CHECKING:
    from tests.oidc_issuer import OidcIssuer

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "wrk_registrations.lua"

REGISTRATIONS_START = "<!-- registrations:start -->"
REGISTRATIONS_END = "<!-- registrations:end -->"
SECTION_TITLE = "## Registrations: `registrations.py`"

TARGETS = ("pushgate-sqlite", "pushgate-sqlite-2w", "pushgate-postgresql-2w")
AUTHS = ("oidc", "key")
AUTH_LABELS = {"oidc": "OIDC", "key": "access key"}
AUDIENCE = "pushgate-bench-app"
TOKEN_LIFETIME = 4 * 3600  # seconds: the identity tokens outlive any run
LOCALE = "en-US"

# Goals of the issue.
THROUGHPUT_GOAL = 2000.0
P99_GOAL_MS = 10.0


# -- identity tokens and requests ------------------------------------------------------------


def start_issuer() -> OidcIssuer:
    """The tests' local OpenID Connect issuer (tests/oidc_issuer.py): discovery and JWKS
    over HTTP on 127.0.0.1, RS256 keys, and the tokens it signs."""
    sys.path.insert(0, str(REPO))
    from tests.oidc_issuer import OidcIssuer

    return OidcIssuer(alg="RS256", audience=AUDIENCE).start()


def user_name(index: int) -> str:
    return f"user-{index:05d}"


@dataclass(frozen=True, slots=True)
class Device:
    """One installation of the app: whose it is, its APNs token and its id."""

    user: str
    token: str  # 64 hex, the shape of an APNs device token
    device_id: str


@dataclass(frozen=True)
class App:
    name: str
    arn: str


class Requests:
    """Complete HTTP/1.1 registration requests, as an app (``oidc``: the user's identity
    token) or a server (``key``: HTTP Basic with an access key, the user in the body)."""

    def __init__(self, host: str, id_tokens: dict[str, str]) -> None:
        self.host = host
        self.id_tokens = id_tokens
        basic = base64.b64encode(f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}".encode()).decode()
        self.basic = f"Basic {basic}"

    def one(self, app: App, device: Device, auth: str) -> bytes:
        body: dict[str, str] = {
            "application": app.name,
            "platform": "APNS",
            "token": device.token,
            "deviceId": device.device_id,
            "locale": LOCALE,
        }
        if auth == "key":
            body["user"] = device.user
            authorization = self.basic
        else:
            authorization = f"Bearer {self.id_tokens[device.user]}"
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST /v1/registrations HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: {authorization}\r\nContent-Type: application/json\r\n"
            f"User-Agent: pushgate-bench\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    def many(self, app: App, devices: Sequence[Device], auth: str) -> list[bytes]:
        return [self.one(app, device, auth) for device in devices]


# -- wrk with 201 as a success ---------------------------------------------------------------


def run_wrk(port: int, request_file: Path, wrk: WrkSettings) -> dict[str, Any]:
    """control_plane's wrk run, with ``wrk_registrations.lua``: "ok" counts 200 and 201,
    and ``created`` the 201s."""
    argv = ["wrk", f"-t{wrk.threads}", f"-c{wrk.connections}", f"-d{wrk.duration}s"]
    argv += ["--latency", "--timeout", "5s", "-s", str(LUA), f"http://{HOST}:{port}/"]
    argv += ["--", str(request_file), str(wrk.threads)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=wrk.duration + 60, check=False
    )
    lines = proc.stdout.splitlines()
    stats_line = next((x for x in lines if x.startswith("BENCH_JSON ")), None)
    created_line = next((x for x in lines if x.startswith("BENCH_CREATED ")), None)
    if proc.returncode != 0 or stats_line is None or created_line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    stats: dict[str, Any] = json.loads(stats_line.removeprefix("BENCH_JSON "))
    stats["created"] = int(created_line.split()[1])
    return stats


# -- one target ------------------------------------------------------------------------------


class RegistrationRun(TargetRun):
    """One target's phases. From control_plane's ``TargetRun`` it takes ``best_of`` (run
    a phase again while other work disturbs it), the PostgreSQL session count and
    ``profile_phase`` (which calls :meth:`build_create`); its ``__init__``, which makes a
    GCM application, is of no use here."""

    def __init__(
        self,
        target: Target,
        server: Server,
        port: int,
        workdir: Path,
        plan: Plan,
        issuer: OidcIssuer,
        requests: Requests,
        users: int,
    ) -> None:
        self.target = target
        self.server = server
        self.port = port
        self.workdir = workdir
        self.plan = plan
        self.issuer = issuer
        self.requests = requests
        self.users = users
        self.client = sns_client(port)
        self.key_pem = apns_signing_key()
        self.next_user = 0
        self.devices: dict[str, Device] = {}  # every device sent so far, by token

    # -- set-up -----------------------------------------------------------------------------

    def application(self, purpose: str) -> App:
        """A token-auth APNs application whose users sign in with the local issuer (its
        ``OidcIssuer``/``OidcAudience`` attributes)."""
        name = f"bench-{purpose}-{uuid.uuid4().hex[:6]}"
        arn = self.client.create_platform_application(
            Name=name,
            Platform="APNS",
            Attributes={
                "PlatformPrincipal": KEY_ID,
                "PlatformCredential": self.key_pem,
                "ApplePlatformTeamID": TEAM_ID,
                "ApplePlatformBundleID": BUNDLE_ID,
                "OidcIssuer": self.issuer.url,
                "OidcAudience": AUDIENCE,
            },
        )["PlatformApplicationArn"]
        return App(name, str(arn))

    def new_devices(self, count: int) -> list[Device]:
        """``count`` new installations, spread over the users in turn."""
        devices = []
        for _ in range(count):
            user = user_name(self.next_user % self.users)
            self.next_user += 1
            device = Device(user, secrets.token_hex(32), str(uuid.uuid4()).upper())
            self.devices[device.token] = device
            devices.append(device)
        return devices

    def tokens(self, app: App) -> list[str]:
        """The device tokens of the application's endpoints, listed through the SNS API."""
        paginator = self.client.get_paginator("list_endpoints_by_platform_application")
        pages = paginator.paginate(PlatformApplicationArn=app.arn)
        return [e["Attributes"]["Token"] for page in pages for e in page["Endpoints"]]

    def warm_up(self) -> None:
        """Registrations of both kinds over 8 connections, so every worker process has
        fetched the issuer's discovery document and keys before anything is measured."""
        app = self.application("warmup")
        devices = self.new_devices(80)
        for start in range(8):
            conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            try:
                for i, device in enumerate(devices[start::8]):
                    raw = self.requests.one(app, device, AUTHS[i % 2])
                    head, body = raw.split(b"\r\n\r\n", 1)
                    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[2:])
                    conn.request("POST", "/v1/registrations", body, headers)
                    response = conn.getresponse()
                    answer = response.read()
                    if response.status != 201:
                        raise RuntimeError(f"warm-up registration: {response.status} {answer!r}")
            finally:
                conn.close()
        if len(self.tokens(app)) != len(devices):
            raise RuntimeError("warm-up: the endpoint count does not match the registrations")

    def build_create(self, tag: str) -> Callable[[int, int], list[bytes]]:
        """New devices registering with identity tokens: what ``profile_phase`` samples."""
        app = self.application(f"create-{tag}")
        return lambda n, _attempt: self.requests.many(app, self.new_devices(n), "oidc")

    # -- phases -----------------------------------------------------------------------------

    def _wrk_run(
        self, phase: str, app: App, devices: Sequence[Device], auth: str, *, creates: bool
    ) -> tuple[Row, int]:
        name = self.target.name
        before = len(self.tokens(app))
        path = self.workdir / f"{name}-{auth}-{'create' if creates else 're'}.req"
        write_requests(path, self.requests.many(app, devices, auth))
        background = wait_for_quiet(self.plan.quiet_wait, self.plan.quiet_threshold)
        log(f"{name} {phase}: {len(devices):,} requests over {before:,} endpoints, running")
        sessions = self.pg_sessions()
        try:
            with CpuMeter(self.server) as meter:
                stats = run_wrk(self.port, path, self.plan.wrk)
        finally:
            path.unlink()
        created = len(self.tokens(app)) - before
        errors = sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors"))
        errors += stats["timeouts"]
        wraps = stats["wraps"]
        if creates:
            # wrk stops with requests in flight: the server may still carry out one per
            # connection (and any that timed out) after wrk stopped counting.
            new = stats["created"]
            slack = self.plan.wrk.connections + errors
            expected, count_ok = f"{new:,}..{new + slack:,}", new <= created <= new + slack
        else:
            expected, count_ok = "0", created == 0 and stats["created"] == 0
        row = Row(
            target=self.target.label,
            phase=phase,
            rate=stats["requests"] / (stats["duration_us"] / 1e6),
            p50_ms=stats["p50_us"] / 1000,
            p99_ms=stats["p99_us"] / 1000,
            max_ms=stats["max_us"] / 1000,
            responses=stats["requests"],
            non200=stats["non200"],
            errors=errors,
            created=created,
            created_expected=expected,
            count_ok=count_ok,
            wrapped=creates and bool(wraps),
            cpu=meter.usage,
            background_before=background,
        )
        self.note_sessions(row, sessions)
        if wraps and creates:
            row.notes.append(f"requests ran out ({wraps} wraps): some were re-sent")
        elif not creates:
            row.notes.append(
                f"{len(devices):,} devices, each re-registered "
                f"{stats['request_calls'] / len(devices):.1f} times on average"
            )
        if stats["first_error"]:
            row.notes.append(f"first non-2xx: {one_line(stats['first_error'])}")
        log(
            f"{name} {phase}: {row.rate:,.0f} req/s, p50 {row.p50_ms:.2f} ms, "
            f"p99 {row.p99_ms:.2f} ms, CPU {asdict(row.cpu)}; {stats}"
        )
        return row, wraps

    def create_max(self, auth: str) -> tuple[Row, App]:
        """wrk over new devices (twice as many next time if they ran out)."""
        phase = f"{AUTH_LABELS[auth]} create-max"
        app = self.application(f"{auth}-max")
        counts = [self.plan.create_requests]

        def once(_attempt: int) -> Row:
            devices = self.new_devices(counts[-1])
            row, wraps = self._wrk_run(phase, app, devices, auth, creates=True)
            counts.append(counts[-1] * 2 if wraps else counts[-1])
            return row

        return self.best_of(phase, once), app

    def reregister_max(self, auth: str, app: App) -> Row:
        """wrk over the devices the application has, each registering again unchanged;
        wrk goes round them as often as it needs (an update is an update)."""
        phase = f"{AUTH_LABELS[auth]} re-register-max"
        devices = [self.devices[token] for token in self.tokens(app)]
        return self.best_of(
            phase, lambda _attempt: self._wrk_run(phase, app, devices, auth, creates=False)[0]
        )

    def paced_pair(self, auth: str) -> list[Row]:
        """New devices at the paced rate, then the same devices registering again."""
        label = AUTH_LABELS[auth]
        rate = f"@{self.plan.rate:,.0f}/s"
        app = self.application(f"{auth}-paced")
        count = int(self.plan.rate * self.plan.paced_duration)
        created: list[Device] = []

        def create(_attempt: int) -> Row:
            devices = self.new_devices(count)
            row = self._paced_run(f"{label} create {rate}", app, devices, auth, creates=True)
            if row.valid:
                created[:] = devices
            return row

        rows = [self.best_of(f"{label} create {rate}", create)]
        if not created:  # no clean set of existing devices to register again
            return rows
        phase = f"{label} re-register {rate}"
        rows.append(
            self.best_of(
                phase,
                lambda _attempt: self._paced_run(phase, app, created, auth, creates=False),
            )
        )
        return rows

    def _paced_run(
        self, phase: str, app: App, devices: Sequence[Device], auth: str, *, creates: bool
    ) -> Row:
        plan, name = self.plan, self.target.name
        payloads = self.requests.many(app, devices, auth)
        before = len(self.tokens(app))
        background = wait_for_quiet(plan.quiet_wait, plan.quiet_threshold)
        log(f"{name} {phase}: {len(payloads):,} requests, running")
        sessions = self.pg_sessions()
        with CpuMeter(self.server) as meter:
            result = run_paced(
                self.port, payloads, plan.rate, plan.paced_duration, plan.paced_connections
            )
        created = len(self.tokens(app)) - before
        answered = len(result.latencies)
        slack = result.unanswered + result.errors  # may have been carried out all the same
        if creates:
            # The generator counts 200s; a new device gets 201. Every answer must have made
            # its endpoint: the count through the API says so, and tells the failures.
            non2xx = max(0, answered - created) + result.ok
            expected = f"{answered:,}" if not slack else f"{answered:,}..{answered + slack:,}"
            count_ok = result.ok == 0 and answered <= created <= answered + slack
        else:
            non2xx, expected = result.non200, "0"
            count_ok = created == 0
        row = Row(
            target=self.target.label,
            phase=phase,
            rate=result.achieved_rate,
            p50_ms=percentile(result.latencies, 50) * 1000,
            p99_ms=percentile(result.latencies, 99) * 1000,
            max_ms=max(result.latencies, default=math.nan) * 1000,
            responses=answered,
            non200=non2xx,
            errors=result.errors + result.unanswered,
            created=created,
            created_expected=expected,
            count_ok=count_ok,
            cpu=meter.usage,
            background_before=background,
        )
        row.notes.append(
            "service time (from the actual send) "
            f"p50 {percentile(result.service, 50) * 1000:.2f} ms, "
            f"p99 {percentile(result.service, 99) * 1000:.2f} ms; "
            f"generator's worst lag behind its timetable {result.max_dispatch_lag * 1000:.1f} ms"
        )
        self.note_sessions(row, sessions)
        if result.unanswered:
            row.notes.append(f"{result.unanswered:,} requests unanswered at the drain deadline")
        first = result.first_error
        if first and not (creates and first.startswith("201 ")):
            row.notes.append(f"first error: {one_line(first)}")
        log(
            f"{name} {phase}: {row.rate:,.0f} req/s, p50 {row.p50_ms:.2f} ms, "
            f"p99 {row.p99_ms:.2f} ms, CPU {asdict(row.cpu)}, notes {row.notes}"
        )
        return row


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    profile: dict[str, Any] | None = None


def run_target(
    target: Target, workdir: Path, plan: Plan, issuer: OidcIssuer, users: int
) -> Outcome:
    id_tokens = {
        user_name(i): issuer.issue(user_name(i), exp_in=TOKEN_LIFETIME) for i in range(users)
    }
    out = Outcome()
    with running(target, workdir, plan.admin_url, plan.source) as (server, port):
        log(f"{target.name}: pid {server.pid} on port {port}")
        requests = Requests(f"{HOST}:{port}", id_tokens)
        run = RegistrationRun(target, server, port, workdir, plan, issuer, requests, users)
        run.warm_up()
        for auth in AUTHS:
            create, app = run.create_max(auth)
            out.rows += [create, run.reregister_max(auth, app)]
        for auth in AUTHS:
            out.rows += run.paced_pair(auth)
        if plan.profile:
            out.profile = run.profile_phase()
    return out


# -- report ----------------------------------------------------------------------------------


def goals(rows: Sequence[Row], rate: float) -> list[str]:
    by = {(r.target, r.phase): r for r in rows}
    paced = f"@{rate:,.0f}/s"
    out = []
    for label in dict.fromkeys(r.target for r in rows):
        create, again = by.get((label, "OIDC create-max")), by.get((label, "OIDC re-register-max"))
        if create and again:
            met = min(create.rate, again.rate) >= THROUGHPUT_GOAL and create.clean and again.clean
            out.append(
                f"- {label}: {create.rate:,.0f} new-device and {again.rate:,.0f} "
                f"re-registrations/s with identity tokens {'meets' if met else 'MISSES'} "
                f"the >= {THROUGHPUT_GOAL:,.0f}/s goal"
            )
        create_paced = by.get((label, f"OIDC create {paced}"))
        again_paced = by.get((label, f"OIDC re-register {paced}"))
        if create_paced and again_paced:
            both = (create_paced, again_paced)
            met = all(r.p99_ms < P99_GOAL_MS and r.rate >= 0.98 * rate and r.clean for r in both)
            out.append(
                f"- {label}: p99 {fmt_ms(create_paced.p99_ms)} ms (new devices) and "
                f"{fmt_ms(again_paced.p99_ms)} ms (re-registrations) with identity tokens at "
                f"{rate:,.0f}/s {'meets' if met else 'MISSES'} the p99 < {P99_GOAL_MS:g} ms goal"
            )
        key = by.get((label, "access key create-max"))
        if key and create:
            out.append(
                f"- {label}: verifying the identity token costs "
                f"{1 - create.rate / key.rate:.0%} of the create-max throughput "
                f"({create.rate:,.0f}/s with OIDC, {key.rate:,.0f}/s with an access key)"
            )
    return out


def report(
    rows: Sequence[Row],
    profiles: Sequence[dict[str, Any]],
    info: dict[str, str],
    plan: Plan,
    users: int,
    command: str,
) -> str:
    notes = [f"- {r.target} / {r.phase}: {n}" for r in rows for n in r.notes]
    busy = [f"{r.target} / {r.phase} {r.background_before:.0f}%" for r in rows]
    parts = [
        f"Run {info['date']}: `nproc` = {info['nproc']} ({info['cpu']}), "
        f"Python {info['python']}, {info['wrk']}, pushgate {info['source']} "
        f"(commit {info['commit']}).",
        "",
        "```sh",
        command,
        "```",
        "",
        f"{users:,} users, each with an RS256 identity token minted ahead; every device "
        "registers with its APNs token, device id and locale. wrk "
        f"`-t{plan.wrk.threads} -c{plan.wrk.connections} -d{plan.wrk.duration}s`; paced "
        f"generator {plan.rate:,.0f} req/s for {plan.paced_duration:g} s over "
        f"{plan.paced_connections} keep-alive connections, latency from the scheduled send "
        "time. `non-2xx` counts answers other than 200 (updated) and 201 (created). CPU in % "
        f"of one core (the machine has {info['nproc']}00%): the server processes; "
        "PostgreSQL; the load generator; everything else on the machine (the noise).",
        "",
        table(rows).replace("| non-200 |", "| non-2xx |", 1),
        "",
        *goals(rows, plan.rate),
    ]
    if notes:
        parts += ["", "Notes:", "", *notes]
    parts += ["", "Machine busy % (of one core) just before each phase: " + "; ".join(busy) + "."]
    for summary in profiles:
        text = profile_text(summary).replace("under create-max", "under OIDC create-max", 1)
        parts += ["", text]
    return "\n".join(parts)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="pushgate registration benchmark (see README.md)")
    p.add_argument("--write-readme", action="store_true", help="rewrite bench/README.md figures")
    p.add_argument("--profile", action="store_true", help="py-spy each target as well")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset")
    p.add_argument("--users", type=int, default=1000, help="distinct users (identity tokens)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--duration", type=int, default=15, help="seconds per wrk phase")
    p.add_argument("--create-requests", type=int, default=40_000, help="new devices per create-max")
    p.add_argument("--rate", type=float, default=500.0, help="paced phases' requests/s")
    p.add_argument("--paced-duration", type=float, default=10.0)
    p.add_argument("--paced-connections", type=int, default=16)
    p.add_argument("--profile-duration", type=int, default=10)
    p.add_argument("--quiet-wait", type=float, default=60.0, help="wait for an idle machine")
    p.add_argument("--quiet-threshold", type=float, default=15.0, help="idle: busy %% below")
    p.add_argument("--attempts", type=int, default=3, help="tries while other work disturbs")
    p.add_argument("--max-other", type=float, default=20.0, help="%% of a core others may take")
    p.add_argument("--ref", help="benchmark pushgate's src/ at this git revision (e.g. HEAD)")
    p.add_argument(
        "--postgres-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="where to CREATE and DROP the throw-away database",
    )
    args = p.parse_args(argv)
    for name in ("duration", "paced_duration", "profile_duration"):
        if not 1 <= getattr(args, name) <= 120:
            p.error(f"--{name.replace('_', '-')} must be 1..120 s")
    if not 1 <= args.users <= 100_000:
        p.error("--users must be 1..100000")
    if not 1 <= args.attempts <= 5:
        p.error("--attempts must be 1..5")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    targets = [make_target(n.strip()) for n in args.targets.split(",") if n.strip()]
    signal.signal(signal.SIGTERM, _interrupt)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python bench/registrations.py", *given])
    info = machine()
    outcomes: list[Outcome] = []
    failures: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pushgate-bench-") as tmp:
        source = None
        info["source"] = "from the installed work tree"
        if args.ref:
            info["source"] = f"from git revision {args.ref}"
            source, info["commit"] = export_source(args.ref, Path(tmp))
            log(f"pushgate from {args.ref} = {info['commit']}, unpacked in {source}")
        plan = Plan(
            wrk=WrkSettings(args.threads, args.connections, args.duration),
            create_requests=args.create_requests,
            get_requests=0,
            rate=args.rate,
            paced_duration=args.paced_duration,
            paced_connections=args.paced_connections,
            profile=args.profile,
            profile_duration=args.profile_duration,
            admin_url=args.postgres_admin_url,
            quiet_wait=args.quiet_wait,
            quiet_threshold=args.quiet_threshold,
            attempts=args.attempts,
            max_other=args.max_other,
            source=source,
        )
        issuer = start_issuer()
        try:
            for target in targets:
                try:
                    outcomes.append(run_target(target, Path(tmp), plan, issuer, args.users))
                except Exception as exc:  # one target failing should not lose the others
                    log(f"{target.name} FAILED: {exc!r}")
                    failures.append(f"- {target.label}: FAILED, {one_line(repr(exc), 300)}")
        finally:
            issuer.stop()
    log(f"all targets done in {time.monotonic() - started:.0f} s")
    rows = [row for outcome in outcomes for row in outcome.rows]
    profiles = [outcome.profile for outcome in outcomes if outcome.profile]
    text = report(rows, profiles, info, plan, args.users, command)
    if failures:
        text += "\n\nTargets that failed:\n\n" + "\n".join(failures)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    dump = {"machine": info, "command": command, "plan": asdict(plan), "users": args.users}
    dump["rows"] = [asdict(r) for r in rows]
    dump["profiles"] = profiles
    (RESULTS_DIR / "registrations.json").write_text(json.dumps(dump, indent=2, default=str))
    if args.write_readme:
        replace_readme_block(REGISTRATIONS_START, REGISTRATIONS_END, text, SECTION_TITLE + "\n\n")
        log(f"figures written to {README.relative_to(REPO)}")
    # Failure means lost or duplicated work, or pushgate answering with errors. Missing a
    # goal shows in the report only.
    bad = [r for r in rows if not r.valid or r.non200]
    for r in bad:
        log(f"FAILED: {r.target} / {r.phase}: {r.notes}")
    return 1 if bad or failures else 0


if __name__ == "__main__":
    sys.exit(main())
