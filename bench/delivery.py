"""Delivery benchmark: topic fan-out to APNs against h2load, in one run, on one APNs fake.

One command measures pushgate's delivery side by side with its ceiling::

    python bench/delivery.py [--sizes 10000,100000] [--stores sqlite] [--write-readme] [--profile]

The ceiling. ``apns_fast_fake.js`` (Node, HTTP/2 over TLS) answers every
``POST /3/device/<token>`` with 200 and counts what it answered; it is fast enough not to be
the bottleneck. h2load, nghttp2's C load generator, sends it the requests pushgate would
send: the same path shape (``/3/device/<64 hex>``, a distinct token each), the same headers
(``apns-topic``, ``apns-push-type``, ``content-type``, ``authorization: bearer`` with a real
ES256 JWT, and ``apns-priority``, which pushgate leaves out here) and the same payload, N
requests at N = the largest size, once over one connection (``-c 1 -m 200``) and once over
four (``-c 4 -m 250``). The faster is the ceiling. An unmeasured h2load run first warms up
the fake (Node's JIT).

pushgate. For each store and topic size: a fresh data directory (or a throw-away PostgreSQL
database) and a fresh ``pushgate serve`` pointed at the fake (``PUSHGATE_APNS_URL``,
``PUSHGATE_PROVIDER_CA_FILE``). boto3 creates an APNs application with token auth and a
topic; the endpoints and their ``application`` subscriptions are inserted straight into the
database with SQLAlchemy Core (executemany), rows exactly as pushgate writes them, because
N CreatePlatformEndpoint and Subscribe calls would take longer than the benchmark. A few
API reads check that pushgate sees them. One Publish to a single endpoint warms the server
up (its HTTP/2 connection, its JWT); then the fake's counter is reset and the measured
``Publish(TopicArn=...)`` goes out.

Both sides are timed by the fake's clock: throughput is N / (the fake's last answer - the
moment the work started: h2load launched, or Publish called), so it includes fan-out and
start-up. The fake is polled every 50 ms, which gives the sustained rate between its 10% and
90% marks too. Also measured: the time to the first delivery, until every delivery is recorded
as sent (``GET /v1/messages/{id}``), the server's RSS sampled every 100 ms from a thread
(and VmHWM at the end), and CPU time of the server, the fake and everything else.
Every delivery must be recorded ``sent`` and the fake must have answered exactly N: a run
that falls short is reported loudly and the script exits non-zero.

Servers run in their own process groups on 127.0.0.1 and are always stopped; helpers come
from ``control_plane.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from control_plane import (
    ACCESS_KEY_ID,
    HOST,
    REGION,
    SECRET_ACCESS_KEY,
    VENV_BIN,
    Server,
    _interrupt,
    _keep_log_tail,
    export_source,
    free_port,
    git_commit,
    group_cpu_seconds,
    group_pids,
    log,
    machine_busy_seconds,
    one_line,
    postgres_cpu_seconds,
    postgres_database,
    proc_cpu_seconds,
    replace_readme_block,
    sns_client,
    summarise_profile,
    wait_for_quiet,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
RESULTS_DIR = BENCH_DIR / "results"  # git-ignored
FAKE_JS = BENCH_DIR / "apns_fast_fake.js"

DELIVERY_START = "<!-- delivery:start -->"
DELIVERY_END = "<!-- delivery:end -->"
SECTION_TITLE = "## Delivery: `delivery.py`"

ACCOUNT_ID = "123456789012"  # pushgate's default account
KEY_ID = "BENCHKEY01"  # PlatformPrincipal: the 10-character APNs key id
TEAM_ID = "TEAM123456"
BUNDLE_ID = "com.example.bench"
MESSAGE = "bench"
PAYLOAD = json.dumps({"aps": {"alert": MESSAGE}}, separators=(",", ":")).encode()
H2LOAD_SETTINGS = ((1, 200), (4, 250))  # (clients, max concurrent streams per client)
RSS_INTERVAL = 0.1
MB = 1024 * 1024

# Goals of the issue.
RATIO_GOAL = 0.5
RSS_GOAL_MB = 300.0
FLAT_TOLERANCE = 0.15  # "flat": the largest topic's peak RSS within 15% of the smallest's


# -- TLS and the fake ------------------------------------------------------------------------


def make_tls(into: Path, source: Path | None) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it: (CA PEM,
    certificate PEM, key PEM). pushgate's own ``FakeCA`` where the work tree has one,
    unless a ``--ref`` revision is benchmarked: importing the work tree's ``pushgate``
    here would shadow the revision's, whose tables ``load_topic`` uses."""
    if source is None:
        with contextlib.suppress(ImportError):
            from pushgate.fakes.tls import FakeCA

            ca = FakeCA.create(into / "tls")
            return ca.ca_file, ca.server_cert_file, ca.server_key_file
    return _own_tls(into)


def _own_tls(into: Path) -> tuple[Path, Path, Path]:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushgate bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = into / "ca.pem", into / "fake-cert.pem", into / "fake-key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


def apns_signing_key() -> str:
    """A P-256 key as PKCS#8 PEM, the shape of an APNs .p8 auth key."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


class Fake:
    """The Node APNs fake: the TLS port pushgate and h2load talk to, a stats port for us."""

    def __init__(self, cert: Path, key: Path, workdir: Path) -> None:
        self.port = free_port()
        self.stats_port = free_port()
        argv = ["node", str(FAKE_JS), str(cert), str(key), str(self.port), str(self.stats_port)]
        self.server = Server("apns-fake", argv, dict(os.environ), workdir / "apns-fake.log")

    @property
    def pid(self) -> int:
        return self.server.pid

    def start(self) -> None:
        self.server.start(self.stats_port, "/")

    def stop(self) -> None:
        self.server.stop()

    def _request(self, method: str) -> dict[str, int]:
        conn = http.client.HTTPConnection(HOST, self.stats_port, timeout=10)
        try:
            conn.request(method, "/")
            stats: dict[str, int] = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return stats

    def stats(self) -> dict[str, int]:
        """``{"count", "first", "last"}``: requests answered 200, first and last in ms epoch."""
        return self._request("GET")

    def reset(self) -> None:
        self._request("DELETE")


def timeline(progress: Progress, start: float) -> list[tuple[float, int]]:
    return [(round(t - start, 3), c) for t, c in progress.samples]


@dataclass
class Progress:
    """What polling the fake saw: its last stats, why it stopped early (None: all arrived),
    and (epoch seconds, count) samples every 50 ms."""

    stats: dict[str, int]
    problem: str | None
    samples: list[tuple[float, int]]

    def steady_rate(self, total: int) -> float:
        """Requests/s between 10% and 90% of ``total``: the sustained rate, without the
        start-up and the tail."""
        t10, t90 = self._time_of(0.1 * total), self._time_of(0.9 * total)
        if t10 is None or t90 is None or t90 <= t10:
            return float("nan")
        return 0.8 * total / (t90 - t10)

    def _time_of(self, count: float) -> float | None:
        previous = None
        for t, c in self.samples:
            if c >= count:
                if previous is None or c == previous[1]:
                    return t
                t0, c0 = previous
                return t0 + (count - c0) / (c - c0) * (t - t0)
            previous = (t, c)
        return None


def wait_for_count(
    fake: Fake,
    expected: int,
    timeout: float,
    check: Callable[[], str | None] | None = None,
    check_every: float = 5.0,
    stall: float = 60.0,
) -> Progress:
    """Poll the fake until it answered ``expected`` requests.

    ``check`` (called every ``check_every`` s) may return a reason to stop waiting; so do a
    timeout and ``stall`` s without progress.
    """
    start = time.monotonic()
    last_check = start
    progress_at, seen = start, -1
    samples: list[tuple[float, int]] = []
    while True:
        stats = fake.stats()
        samples.append((time.time(), stats["count"]))
        now = time.monotonic()
        if stats["count"] >= expected:
            return Progress(stats, None, samples)
        if stats["count"] != seen:
            progress_at, seen = now, stats["count"]
        problem = None
        if now - progress_at > stall:
            problem = f"no progress for {stall:.0f} s at {seen:,} of {expected:,}"
        elif now - start > timeout:
            problem = f"timed out after {timeout:.0f} s at {seen:,} of {expected:,}"
        elif check is not None and now - last_check >= check_every:
            last_check = now
            problem = check()
        if problem:
            return Progress(stats, problem, samples)
        time.sleep(0.05)


# -- measurements ----------------------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples the summed VmRSS of a process group every ``interval`` s, on a thread."""

    def __init__(self, pgid: int, interval: float = RSS_INTERVAL) -> None:
        self.pgid = pgid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (monotonic, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        pids: list[int] = []
        refreshed = 0.0
        while True:
            now = time.monotonic()
            if now - refreshed > 2.0:  # `serve --workers N` may replace processes
                pids, refreshed = group_pids(self.pgid), now
            rss = sum(_status_kb(pid, "VmRSS") for pid in pids) * 1024
            self.samples.append((now, rss))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)


def rss_now(pgid: int) -> int:
    return sum(_status_kb(pid, "VmRSS") for pid in group_pids(pgid)) * 1024


def hwm_now(pgid: int) -> int:
    """VmHWM, the kernel's own peak RSS, summed over the group: catches spikes between
    samples, but counts start-up and the data loading too."""
    return sum(_status_kb(pid, "VmHWM") for pid in group_pids(pgid)) * 1024


class CpuWatch:
    """CPU seconds of the server's group, its PostgreSQL database, the fake and the whole
    machine over a phase."""

    def __init__(self, fake: Fake, server: Server | None = None) -> None:
        self.fake = fake
        self.server_pgid = server.pid if server else None
        self.database = server.database if server else None
        self.wall = self.server = self.db = self.fake_cpu = self.machine = 0.0

    def _snapshot(self) -> tuple[tuple[float, ...], dict[int | str, float]]:
        server = group_cpu_seconds(self.server_pgid) if self.server_pgid else 0.0
        db = postgres_cpu_seconds(self.database) if self.database else {}
        times = (time.monotonic(), server, proc_cpu_seconds(self.fake.pid))
        return (*times, machine_busy_seconds()), db

    def __enter__(self) -> CpuWatch:
        self._start, self._db_start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        end, db_end = self._snapshot()
        self.wall, self.server, self.fake_cpu, self.machine = (
            b - a for a, b in zip(self._start, end, strict=True)
        )
        # As control_plane.CpuMeter: new backends count from zero; ended ones moved their
        # whole time into "ended", so what they had used before comes off again.
        before = self._db_start
        db = sum(max(0.0, t - before.get(p, 0.0)) for p, t in db_end.items())
        self.db = max(0.0, db - sum(t for p, t in before.items() if p not in db_end))

    def percent(self) -> dict[str, float]:
        """% of one core: the server, PostgreSQL, the fake, and the rest (the load
        generator or this script, and other people's work)."""
        if self.wall <= 0:
            return {}
        pct = 100 / self.wall
        rest = max(0.0, self.machine - self.server - self.db - self.fake_cpu)
        out = {"server": self.server * pct, "fake": self.fake_cpu * pct, "rest": rest * pct}
        if self.database:
            out["db"] = self.db * pct
        return out


# -- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    kind: str  # "h2load" | "pushgate"
    endpoints: int
    delivered: int  # requests the fake answered 200
    rate: float  # N / (fake's last answer - start)
    first_ms: float  # start -> the fake's first answer
    seconds: float  # start -> the fake's last answer
    steady_rate: float = float("nan")  # between 10% and 90% of the requests
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (s from start, count)
    recorded_s: float = float("nan")  # start -> every delivery recorded (pushgate)
    counts: dict[str, int] = field(default_factory=dict)  # /v1/messages counts (pushgate)
    rss_idle_mb: float = float("nan")  # just before Publish
    rss_peak_mb: float = float("nan")  # peak of the 100 ms samples
    hwm_mb: float = float("nan")  # VmHWM at the end
    server_cpu_s: float = float("nan")
    cpu: dict[str, float] = field(default_factory=dict)  # % of a core: server, fake, rest
    busy_before: float = float("nan")  # machine busy % before the run
    load_s: float = float("nan")  # inserting the endpoints and subscriptions
    notes: list[str] = field(default_factory=list)
    ok: bool = True

    def ratio(self, ceiling: float) -> float:
        return self.rate / ceiling if ceiling else float("nan")


def fmt(value: float, spec: str = ",.0f") -> str:
    return "-" if value != value else format(value, spec)  # NaN is not equal to itself


def table(rows: Sequence[Row], ceiling: float) -> str:
    lines = [
        "| target | endpoints | req/s | x h2load | 10-90% req/s | first delivery ms | all sent s "
        "| RSS MB idle / peak / HWM | server CPU s | CPU % server / DB / fake / rest | result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        if r.kind == "h2load":
            rss, recorded, server_cpu = "-", fmt(r.seconds, ".2f"), "-"
        else:
            rss = " / ".join(fmt(v) for v in (r.rss_idle_mb, r.rss_peak_mb, r.hwm_mb))
            recorded, server_cpu = fmt(r.recorded_s, ".2f"), fmt(r.server_cpu_s, ".1f")
        cpu = " / ".join(fmt(r.cpu.get(k, float("nan"))) for k in ("server", "db", "fake", "rest"))
        if r.kind == "h2load":
            result = f"{r.delivered:,} answered"
        else:
            c = r.counts
            result = f"{c.get('sent', 0):,} sent, {c.get('failed', 0):,} failed"
            if c.get("expired") or c.get("queued"):
                result += f", {c.get('expired', 0):,} expired, {c.get('queued', 0):,} queued"
        if not r.ok:
            result = "**FAILED**: " + result
        lines.append(
            f"| {r.target} | {r.endpoints:,} | {fmt(r.rate)} | {fmt(r.ratio(ceiling), '.2f')} "
            f"| {fmt(r.steady_rate)} | {fmt(r.first_ms)} | {recorded} | {rss} | {server_cpu} "
            f"| {cpu} | {result} |"
        )
    return "\n".join(lines)


# -- h2load ----------------------------------------------------------------------------------


def bearer_token(key_pem: str) -> str:
    """An ES256 provider token as pushgate makes them: the size that goes on the wire."""
    claims = {"iss": TEAM_ID, "iat": int(time.time())}
    return jwt.encode(claims, key_pem, algorithm="ES256", headers={"kid": KEY_ID})


def tokens(count: int, salt: str) -> list[str]:
    """``count`` distinct 64-hex device tokens."""
    return [f"{salt}{i:056x}" for i in range(count)]


def h2load_argv(
    fake: Fake, workdir: Path, count: int, clients: int, streams: int, key_pem: str
) -> list[str]:
    """h2load sending ``count`` requests as pushgate sends them, each to its own token."""
    uris = workdir / f"h2load-uris-{count}.txt"
    payload = workdir / "h2load-payload.json"
    if not uris.exists():
        base = f"https://{HOST}:{fake.port}/3/device/"
        uris.write_text("".join(f"{base}{t}\n" for t in tokens(count, "b7e0c0de")))
        payload.write_bytes(PAYLOAD)
    argv = ["h2load", "-n", str(count), "-c", str(clients), "-m", str(streams)]
    argv += ["-i", str(uris), "-d", str(payload)]
    for header in (
        f"apns-topic: {BUNDLE_ID}",
        "apns-push-type: alert",
        "apns-priority: 10",
        "content-type: application/json",
        f"authorization: bearer {bearer_token(key_pem)}",
    ):
        argv += ["-H", header]
    return argv


def warm_up_fake(fake: Fake, workdir: Path, count: int, key_pem: str) -> None:
    """An h2load run that is not measured: Node's JIT compiles the fake's hot paths."""
    argv = h2load_argv(fake, workdir, count, 1, 200, key_pem)
    subprocess.run(argv, capture_output=True, timeout=300, check=True)
    fake.reset()


def h2load_row(
    fake: Fake,
    workdir: Path,
    count: int,
    clients: int,
    streams: int,
    key_pem: str,
    quiet: tuple[float, float],
) -> Row:
    argv = h2load_argv(fake, workdir, count, clients, streams, key_pem)
    target = f"h2load -c {clients} -m {streams}"
    busy = wait_for_quiet(*quiet)
    fake.reset()
    log(f"{target}: {count:,} requests")
    out, err = workdir / "h2load.out", workdir / "h2load.err"
    with CpuWatch(fake) as cpu, out.open("w") as stdout, err.open("w") as stderr:
        start = time.time()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, start_new_session=True)

        def exited() -> str | None:
            return "h2load exited" if proc.poll() is not None else None

        try:
            progress = wait_for_count(fake, count, 900, exited, check_every=0.0)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if progress.problem:
            time.sleep(0.2)  # the last answers of a run that fell short
        stats = fake.stats()
    output = out.read_text() + err.read_text()
    row = Row(
        target=target,
        kind="h2load",
        endpoints=count,
        delivered=stats["count"],
        rate=stats["count"] / (stats["last"] / 1000 - start) if stats["count"] else 0.0,
        first_ms=(stats["first"] / 1000 - start) * 1000 if stats["count"] else float("nan"),
        seconds=stats["last"] / 1000 - start if stats["count"] else float("nan"),
        steady_rate=progress.steady_rate(count),
        timeline=timeline(progress, start),
        cpu=cpu.percent(),
        busy_before=busy,
    )
    own = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", output)
    done = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed, (\d+) errored", output)
    codes = re.search(r"status codes: (\d+) 2xx", output)
    if own:
        row.notes.append(f"h2load's own figure: {float(own[3]):,.0f} req/s in {own[1]} {own[2]}")
    if proc.returncode != 0 or not done or not codes or int(codes[1]) != count:
        row.ok = False
        row.notes.append(f"h2load exit {proc.returncode}: {one_line(output)}")
    if row.delivered != count:
        row.ok = False
        row.notes.append(f"the fake answered {row.delivered:,} of {count:,}")
    log(f"{target}: {row.rate:,.0f} req/s; {row.notes}")
    return row


# -- pushgate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    sizes: list[int]
    stores: list[str]
    admin_url: str
    source: Path | None  # pushgate's src/ from --ref; None: the installed work tree
    profile: bool
    timeout: float
    quiet: tuple[float, float]  # wait_for_quiet(max_wait, threshold)
    server_env: dict[str, str] = field(default_factory=dict)  # --server-env


def pushgate_tables(source: Path | None) -> Any:
    """``pushgate.store.tables`` of the revision under test."""
    if source is not None and str(source) not in sys.path:
        sys.path.insert(0, str(source))
    from pushgate.store import tables

    if source is not None:
        assert Path(tables.__file__).is_relative_to(source), tables.__file__
    return tables


def load_topic(
    url: str, source: Path | None, app_arn: str, topic_arn: str, count: int
) -> tuple[list[str], float]:
    """Insert ``count`` APNs endpoints of the application and their ``application``
    subscriptions to the topic, rows as pushgate writes them; (endpoint ARNs, seconds)."""
    from sqlalchemy import Connection, insert, select

    tables = pushgate_tables(source)
    platform, app_name = app_arn.split(":", 5)[5].split("/")[1:]
    prefix = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:"
    now = datetime.now(UTC)
    arns = [f"{prefix}endpoint/{platform}/{app_name}/{uuid.uuid4()}" for _ in range(count)]
    tokens_ = tokens(count, uuid.uuid4().hex[:8])

    def tx(conn: Connection) -> None:
        app_id = conn.execute(
            select(tables.platform_applications.c.id).where(
                tables.platform_applications.c.arn == app_arn
            )
        ).scalar_one()
        topic_id = conn.execute(
            select(tables.topics.c.id).where(tables.topics.c.arn == topic_arn)
        ).scalar_one()
        chunk = 10_000
        for i in range(0, count, chunk):
            conn.execute(
                insert(tables.endpoints),
                [
                    {
                        "application_id": app_id,
                        "arn": arn,
                        "token": token,
                        "enabled": True,
                        "custom_user_data": None,
                        "extra_attributes": None,
                        "user_id": None,
                        "device_id": None,
                        "created_at": now,
                        "updated_at": now,
                        "token_updated_at": now,
                        "disabled_at": None,
                    }
                    for arn, token in zip(arns[i : i + chunk], tokens_[i : i + chunk], strict=True)
                ],
            )
        for i in range(0, count, chunk):
            conn.execute(
                insert(tables.subscriptions),
                [
                    {
                        "arn": f"{topic_arn}:{uuid.uuid4()}",
                        "topic_id": topic_id,
                        "protocol": "application",
                        "endpoint": arn,
                        "attributes": {},  # Subscribe without attributes stores {}
                        "pending": False,
                        "confirmation_token": None,
                        "created_at": now,
                    }
                    for arn in arns[i : i + chunk]
                ],
            )

    start = time.monotonic()
    if url.startswith("sqlite"):
        from sqlalchemy import create_engine

        engine = create_engine(url, connect_args={"timeout": 60})
        try:
            with engine.begin() as conn:
                tx(conn)
        finally:
            engine.dispose()
    else:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url
        from sqlalchemy.ext.asyncio import create_async_engine

        async def run() -> None:
            engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(tx)
                async with engine.connect() as conn:
                    # A topic grown over time has statistics (autovacuum); a bulk load has not.
                    await conn.execute(text("ANALYZE endpoints, subscriptions"))
                    await conn.commit()
            finally:
                await engine.dispose()

        asyncio.run(run())
    return arns, time.monotonic() - start


class MessageStatus:
    """``GET /v1/messages/{id}`` with HTTP Basic auth."""

    def __init__(self, port: int) -> None:
        self.port = port
        auth = base64.b64encode(f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}".encode()).decode()
        self.headers = {"Authorization": f"Basic {auth}"}

    def get(self, message_id: str, **query: int) -> dict[str, Any]:
        path = f"/v1/messages/{message_id}"
        if query:
            path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            conn.request("GET", path, headers=self.headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {one_line(body.decode())}")
        status: dict[str, Any] = json.loads(body)
        return status

    @staticmethod
    def settled(status: dict[str, Any]) -> bool:
        """Fanned out, and nothing queued: every delivery finished, one way or another."""
        return bool(status["fanoutComplete"]) and status["counts"]["queued"] == 0

    def wait_settled(self, message_id: str, timeout: float) -> dict[str, Any]:
        """Poll until the fan-out is done and nothing is queued (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get(message_id, limit=1)
            if self.settled(status) or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    def failure_reasons(self, message_id: str, pages: int = 5) -> Counter[str]:
        """Reasons of deliveries not sent, from the first ``pages`` pages of 1,000."""
        reasons: Counter[str] = Counter()
        after = 0
        for _ in range(pages):
            status = self.get(message_id, after=after, limit=1000)
            for item in status["items"]:
                if item["state"] != "sent":
                    key = f"{item['state']} {item['statusCode']} {item['reason']}"
                    reasons[key] += 1
            if not status["next"]:
                break
            after = int(status["next"])
        return reasons


def server_trouble(log_path: Path) -> list[str]:
    """Tracebacks and warning/error lines from the server's log, counted, first few shown."""
    with contextlib.suppress(OSError):
        lines = log_path.read_text(errors="replace").splitlines()
        bad = [
            line
            for line in lines
            if line.startswith("Traceback")
            or re.search(r'"level": "(?:warning|error|critical)"|\bERROR\b|\bWARNING\b', line)
        ]
        if bad:
            return [f"{len(bad):,} warning/error lines in the server log, first: "] + [
                one_line(line, 300) for line in bad[:3]
            ]
    return []


class PushgateRun:
    """One server: start it, create the application and topic, load the endpoints."""

    def __init__(
        self, store: str, size: int, workdir: Path, plan: Plan, fake: Fake, ca: Path, key_pem: str
    ) -> None:
        self.store = store
        self.size = size
        self.workdir = workdir
        self.plan = plan
        self.fake = fake
        self.ca = ca
        self.key_pem = key_pem
        self.name = f"pushgate-{store}-{size}"
        self.log_path = workdir / f"{self.name}.log"

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        port = free_port()
        with contextlib.ExitStack() as stack:
            data_dir = self.workdir / f"{self.name}-data"
            data_dir.mkdir()
            database = None
            if self.store == "postgresql":
                url, database = stack.enter_context(postgres_database(self.plan.admin_url))
            else:
                url = f"sqlite:///{data_dir / 'pushgate.db'}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
            env |= {
                "PUSHGATE_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "PUSHGATE_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                "PUSHGATE_ACCESS_LOG": "false",
                "PUSHGATE_APNS_URL": f"https://{HOST}:{self.fake.port}",
                "PUSHGATE_PROVIDER_CA_FILE": str(self.ca),
            }
            env |= self.plan.server_env
            if self.plan.source is not None:
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(self.plan.source), *filter(None, [os.environ.get("PYTHONPATH")])]
                )
            argv = [str(VENV_BIN / "pushgate"), "serve", "--host", HOST, "--port", str(port)]
            argv += ["--database-url", url, "--data-dir", str(data_dir)]
            server = Server(self.name, argv, env, self.log_path)
            server.database = database
            stack.callback(_keep_log_tail, self.log_path)
            stack.callback(server.stop)
            server.start(port, "/readyz")
            self.port, self.url = port, url
            yield server

    def setup(self, server: Server) -> tuple[Any, str, list[str], float]:
        """(boto3 client, topic ARN, endpoint ARNs, load seconds)."""
        client = sns_client(self.port)
        app_arn = client.create_platform_application(
            Name=f"bench-{uuid.uuid4().hex[:8]}",
            Platform="APNS",
            Attributes={
                "PlatformPrincipal": KEY_ID,
                "PlatformCredential": self.key_pem,
                "ApplePlatformTeamID": TEAM_ID,
                "ApplePlatformBundleID": BUNDLE_ID,
            },
        )["PlatformApplicationArn"]
        topic_arn = client.create_topic(Name=f"bench-{self.size}")["TopicArn"]
        log(f"{self.name}: loading {self.size:,} endpoints and subscriptions")
        arns, seconds = load_topic(self.url, self.plan.source, app_arn, topic_arn, self.size)
        log(f"{self.name}: loaded in {seconds:.1f} s")
        # pushgate must see the rows as its own.
        attributes = client.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
        confirmed = int(attributes["SubscriptionsConfirmed"])
        if confirmed != self.size:
            raise RuntimeError(f"topic shows {confirmed:,} confirmed subscriptions")
        endpoint = client.get_endpoint_attributes(EndpointArn=arns[-1])["Attributes"]
        if endpoint.get("Enabled") != "true" or len(endpoint.get("Token", "")) != 64:
            raise RuntimeError(f"endpoint reads back wrong: {endpoint}")
        page = client.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        if not page or page[0]["Protocol"] != "application" or page[0]["Endpoint"] not in arns:
            raise RuntimeError(f"subscriptions read back wrong: {page[:1]}")
        sub = client.get_subscription_attributes(SubscriptionArn=page[0]["SubscriptionArn"])
        if sub["Attributes"].get("PendingConfirmation") not in (None, "false"):
            raise RuntimeError(f"subscription reads back wrong: {sub['Attributes']}")
        return client, topic_arn, arns, seconds

    def warm_up(self, client: Any, arn: str, status: MessageStatus) -> None:
        """One direct publish: the HTTP/2 connection and the JWT exist before the clock runs."""
        self.fake.reset()
        message_id = client.publish(TargetArn=arn, Message=MESSAGE)["MessageId"]
        progress = wait_for_count(self.fake, 1, timeout=30, stall=30)
        result = status.wait_settled(message_id, timeout=30)
        if progress.problem or result["counts"]["sent"] != 1:
            items = status.get(message_id, limit=5)["items"]
            deliveries = [
                {k: item.get(k) for k in ("state", "attempts", "statusCode", "reason")}
                for item in items
            ]
            raise RuntimeError(
                f"warm-up publish not delivered ({progress.problem or 'not recorded as sent'}):"
                f" {result['counts']}, deliveries {deliveries}, fake {progress.stats}; "
                f"{' '.join(server_trouble(self.log_path)) or 'no warnings in the server log'}"
                f" (log tail in bench/results/server-{self.log_path.stem}.log)"
            )

    def measure(self, server: Server, client: Any, topic_arn: str, status: MessageStatus) -> Row:
        row = Row(
            target=f"pushgate {self.store}",
            kind="pushgate",
            endpoints=self.size,
            delivered=0,
            rate=0.0,
            first_ms=float("nan"),
            seconds=float("nan"),
        )
        row.busy_before = wait_for_quiet(*self.plan.quiet)
        self.fake.reset()
        row.rss_idle_mb = rss_now(server.pid) / MB
        message_id = ""

        def check() -> str | None:
            if not message_id:
                return None
            s = status.get(message_id, limit=1)
            c = s["counts"]
            if c["failed"] or c["expired"]:
                log(f"{self.name}: !!! {c['failed']:,} failed, {c['expired']:,} expired so far")
            if status.settled(s) and c["sent"] < self.size:
                return f"settled with {c}"
            return None

        with RssSampler(server.pid) as rss, CpuWatch(self.fake, server) as cpu:
            start = time.time()
            message_id = client.publish(TopicArn=topic_arn, Message=MESSAGE)["MessageId"]
            publish_s = time.time() - start
            progress = wait_for_count(self.fake, self.size, self.plan.timeout, check)
            stats, problem = progress.stats, progress.problem
            result = status.wait_settled(message_id, timeout=60)
            recorded = time.time()
        row.delivered = stats["count"]
        if stats["count"]:
            row.seconds = stats["last"] / 1000 - start
            row.first_ms = (stats["first"] / 1000 - start) * 1000
            row.rate = stats["count"] / row.seconds if stats["count"] >= self.size else 0.0
        row.steady_rate = progress.steady_rate(self.size)
        row.timeline = timeline(progress, start)
        row.recorded_s = recorded - start
        row.counts = dict(result["counts"])
        row.rss_peak_mb = rss.peak / MB
        row.hwm_mb = hwm_now(server.pid) / MB
        row.server_cpu_s = cpu.server
        row.cpu = cpu.percent()
        row.notes.append(f"Publish answered in {publish_s * 1000:.0f} ms")
        time.sleep(0.5)  # anything sent twice arrives now
        again = self.fake.stats()["count"]
        if problem:
            row.ok = False
            row.notes.append(f"INCOMPLETE: {problem}")
        if row.counts.get("sent") != self.size or result["deliveries"] != self.size:
            row.ok = False
            row.notes.append(
                f"MESSAGE STATUS: {result['deliveries']:,} deliveries, {row.counts}, "
                f"fanoutComplete {result['fanoutComplete']}"
            )
        if again != self.size:
            row.ok = False
            row.notes.append(f"the fake answered {again:,} requests for {self.size:,} endpoints")
        if not row.ok:
            reasons = status.failure_reasons(message_id)
            if reasons:
                row.notes.append(
                    "reasons of unsent deliveries (first pages): "
                    + "; ".join(f"{k} x{n:,}" for k, n in reasons.most_common(5))
                )
        row.notes += server_trouble(self.log_path)
        log(
            f"{self.name}: {row.rate:,.0f} req/s, first {row.first_ms:,.0f} ms, RSS "
            f"{row.rss_idle_mb:.0f} -> {row.rss_peak_mb:.0f} MB, counts {row.counts}, "
            f"notes {row.notes}"
        )
        if not row.ok:
            log(f"{self.name}: !!! DELIVERY FAILED, server log tail:\n{tail_of(self.log_path)}")
        return row

    def profile(
        self, server: Server, client: Any, topic_arn: str, status: MessageStatus
    ) -> dict[str, Any]:
        """py-spy samples the server during one more Publish to the topic (not in the table)."""
        py_spy = VENV_BIN / "py-spy"
        if not py_spy.exists():
            found = shutil.which("py-spy")
            if found is None:
                raise RuntimeError("py-spy not found: pip install py-spy")
            py_spy = Path(found)
        RESULTS_DIR.mkdir(exist_ok=True)
        raw = RESULTS_DIR / f"profile-delivery-{self.store}-{self.size}.txt"
        rate = 100
        argv = [str(py_spy), "record", "--pid", str(server.pid), "--rate", str(rate)]
        argv += ["--function", "--nonblocking", "--format", "raw", "-o", str(raw)]
        raw.unlink(missing_ok=True)
        wait_for_quiet(*self.plan.quiet)
        self.fake.reset()
        log(f"{self.name}: profiling one more Publish with py-spy")
        spy = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            time.sleep(1.0)
            start = time.time()
            message_id = client.publish(TopicArn=topic_arn, Message=MESSAGE)["MessageId"]
            progress = wait_for_count(self.fake, self.size, self.plan.timeout)
            stats, problem = progress.stats, progress.problem
            status.wait_settled(message_id, timeout=60)
            duration = time.time() - start  # sampled: until every delivery is recorded
            spy.send_signal(signal.SIGINT)
            _, err = spy.communicate(timeout=60)
            if not raw.exists():
                raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')}")
        finally:
            if spy.poll() is None:
                os.killpg(spy.pid, signal.SIGKILL)
                spy.wait()
        summary = summarise_profile(raw.read_text(), rate, max(1, round(duration)))
        summary |= {
            "target": f"pushgate {self.store}",
            "endpoints": self.size,
            "rate_under_profiler": (
                stats["count"] / (stats["last"] / 1000 - start) if stats["count"] else 0.0
            ),
            "problem": problem,
            "raw": str(raw.relative_to(REPO)),
        }
        return summary


def tail_of(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def pushgate_row(
    store: str,
    size: int,
    workdir: Path,
    plan: Plan,
    fake: Fake,
    ca: Path,
    key_pem: str,
    profile: bool,
) -> tuple[Row, dict[str, Any] | None]:
    run = PushgateRun(store, size, workdir, plan, fake, ca, key_pem)
    with run.running() as server:
        log(f"{run.name}: pid {server.pid} on port {run.port}")
        client, topic_arn, arns, load_s = run.setup(server)
        status = MessageStatus(run.port)
        run.warm_up(client, arns[0], status)
        row = run.measure(server, client, topic_arn, status)
        row.load_s = load_s
        # A run that did not deliver everything would only be slow again under py-spy.
        summary = run.profile(server, client, topic_arn, status) if profile and row.ok else None
    return row, summary


# -- report ----------------------------------------------------------------------------------


def machine(source: str) -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    h2load = subprocess.run(["h2load", "--version"], capture_output=True, text=True)
    node = subprocess.run(["node", "--version"], capture_output=True, text=True)
    return {
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "commit": git_commit(),
        "source": source,
        "h2load": h2load.stdout.strip(),
        "node": node.stdout.strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def goals(rows: Sequence[Row], ceiling: float) -> list[str]:
    out = []
    for store in dict.fromkeys(r.target for r in rows if r.kind == "pushgate"):
        mine = sorted((r for r in rows if r.target == store), key=lambda r: r.endpoints)
        largest, smallest = mine[-1], mine[0]
        ratio = largest.ratio(ceiling)
        verdict = "meets" if ratio >= RATIO_GOAL and largest.ok else "MISSES"
        out.append(
            f"- {store}: {largest.rate:,.0f} deliveries/s to {largest.endpoints:,} endpoints, "
            f"{ratio:.2f}x h2load's {ceiling:,.0f} req/s: {verdict} the ≥ {RATIO_GOAL}x goal"
        )
        peak = max(r.rss_peak_mb for r in mine)
        verdict = "meets" if peak < RSS_GOAL_MB else "MISSES"
        out.append(f"- {store}: peak RSS {peak:.0f} MB: {verdict} the < {RSS_GOAL_MB:.0f} MB goal")
        if len(mine) > 1:
            growth = largest.rss_peak_mb / smallest.rss_peak_mb - 1
            flat = "flat" if growth <= FLAT_TOLERANCE else "NOT flat"
            out.append(
                f"- {store}: peak RSS {smallest.rss_peak_mb:.0f} MB at "
                f"{smallest.endpoints:,} endpoints, {largest.rss_peak_mb:.0f} MB at "
                f"{largest.endpoints:,} ({growth:+.0%}): {flat} (within "
                f"{FLAT_TOLERANCE:.0%} counts as flat)"
            )
    return out


def profile_text(summary: dict[str, Any]) -> str:
    lines = [
        f"py-spy profile of {summary['target']} during one more Publish to "
        f"{summary['endpoints']:,} endpoints (not in the table): "
        f"{summary['rate_under_profiler']:,.0f} deliveries/s while sampled, "
        f"{summary['samples']:,} non-idle samples ({summary['busy']:.0%} of wall time). "
        f"Collapsed stacks: {summary['raw']}.",
        "",
        "| own % | top 15 by own time | total % | top 15 by total time |",
        "|--:|---|--:|---|",
    ]
    for (f_own, p_own), (f_tot, p_tot) in zip(summary["own"], summary["total"], strict=False):
        lines.append(f"| {p_own:.1%} | `{f_own}` | {p_tot:.1%} | `{f_tot}` |")
    if summary.get("problem"):
        lines += ["", f"The profiled run did not finish cleanly: {summary['problem']}"]
    return "\n".join(lines)


def report(
    rows: Sequence[Row],
    ceiling: float,
    profiles: Sequence[dict[str, Any]],
    info: dict[str, str],
    command: str,
    failures: Sequence[str],
) -> str:
    parts = [
        f"Run {info['date']}: `nproc` = {info['nproc']} ({info['cpu']}), Python "
        f"{info['python']}, {info['h2load']}, Node {info['node']}, pushgate {info['source']} "
        f"(commit {info['commit']}).",
        "",
        "```sh",
        command,
        "```",
        "",
        f"req/s = endpoints / (the fake's last 200 - start); x h2load = against the best "
        f"h2load row ({ceiling:,.0f} req/s); 10-90% req/s = the rate between the fake's 10% "
        "and 90% marks (polled every 50 ms), without start-up and tail. "
        "First delivery and all sent: from the start "
        "(pushgate: Publish called; h2load: launched). RSS of the server process: idle just "
        "before Publish, peak of 100 ms samples, and the kernel's VmHWM at the end (which "
        "also counts the data loading). CPU in % of one core (the machine has "
        f"{info['nproc']}00%): the server, PostgreSQL (the benchmark database's backends and "
        "the shared WAL writer, checkpointer...), the fake, and the rest: h2load or this "
        "script, plus other people's work.",
        "",
        table(rows, ceiling),
        "",
        *goals(rows, ceiling),
    ]
    notes = [f"- {r.target} / {r.endpoints:,}: {n}" for r in rows for n in r.notes]
    loads = [f"{r.target} / {r.endpoints:,} {r.load_s:.1f} s" for r in rows if r.kind == "pushgate"]
    busy = [f"{r.target} / {r.endpoints:,} {r.busy_before:.0f}%" for r in rows]
    if notes:
        parts += ["", "Notes:", "", *notes]
    if loads:
        parts += ["", "Loading the endpoints and subscriptions (not timed): " + "; ".join(loads)]
    parts += ["", "Machine busy % (of one core) just before each run: " + "; ".join(busy) + "."]
    if failures:
        parts += ["", "Runs that failed:", "", *failures]
    for summary in profiles:
        parts += ["", profile_text(summary)]
    return "\n".join(parts)


SECTION_INTRO = """\
Delivery throughput of a topic fan-out to APNs, measured against h2load (nghttp2's C load
generator) sending the same requests to the same fake in the same run. Goal: pushgate's
fan-out to 100,000 endpoints at ≥ 0.5x h2load, with the server's peak RSS under 300 MB
and flat as the topic grows from 10k to 100k.

### Running it

```sh
apt-get install -y nghttp2-client nodejs   # h2load and Node (for apns_fast_fake.js)
pip install -e '.[bench]'                  # boto3; py-spy for --profile
python bench/delivery.py --ref HEAD --write-readme
```

Useful flags:

- `--sizes 10000,100000`: the topic sizes.
- `--stores sqlite,postgresql`: PostgreSQL runs in a throw-away database created through
  `--postgres-admin-url`, as for `control_plane.py`.
- `--ref HEAD`: benchmark a committed revision's `src/` instead of the working tree.
- `--profile`: py-spy the server during one more Publish to the largest topic (left out of
  the table); the collapsed stacks go to `bench/results/`.
- `--server-env PUSHGATE_NAME=VALUE`: a setting for the pushgate servers (repeatable), to
  try a tuning.
- `--write-readme`: rewrite the figures below.

Raw results go to `bench/results/delivery.json`, next to each server's log tail. The script
exits non-zero if a delivery was not recorded `sent` or the fake did not answer exactly one
request per endpoint. Missing a goal only shows in the report.

### What a run does

1. It makes a throw-away CA and a certificate for 127.0.0.1, and starts
   `apns_fast_fake.js`, which answers every `POST /3/device/<token>` with 200 and counts
   the requests it answered (first and last time, in ms). An unmeasured h2load run warms up
   Node's JIT.
2. **Ceiling.** h2load sends N requests (N = the largest size), each to its own 64-hex
   token, with the headers pushgate sends (`apns-topic`, `apns-push-type`, `content-type`,
   `authorization: bearer` with a real ES256 JWT; also `apns-priority`, which pushgate
   leaves out for this message) and the payload `{"aps":{"alert":"bench"}}`: once with
   `-c 1 -m 200` and once with `-c 4 -m 250`. The faster run is the ceiling.
3. **pushgate.** For each store and size, it starts a fresh `pushgate serve` (access log
   off, `PUSHGATE_APNS_URL` and `PUSHGATE_PROVIDER_CA_FILE` pointing at the fake). boto3
   creates an APNs application with token authentication, and a topic. The endpoints and
   their `application` subscriptions go straight into the database (SQLAlchemy Core
   executemany, rows exactly as pushgate writes them; on PostgreSQL followed by `ANALYZE`,
   as autovacuum would have done for a topic that grew over time), because 2N API calls
   would take longer than the benchmark. API reads (topic attributes, an endpoint, a
   subscription) check that pushgate sees the rows. One Publish to a single endpoint warms
   up the server's HTTP/2 connection and JWT. Then the fake's counter is reset and the
   measured `Publish(TopicArn=...)` goes out.
4. The fake's clock times both sides: req/s = N / (the fake's last 200 - the start), where
   the start is when Publish was called or h2load launched. Fan-out and start-up therefore
   count. A thread samples the server's RSS every 100 ms; VmHWM is read at the end.
   The script polls the fake every 50 ms, so it also reports the rate between the 10% and
   90% marks (the sustained rate, without start-up and tail), and keeps the progress
   timeline in the raw JSON. `GET /v1/messages/{id}` must show N deliveries, all `sent`,
   and the fake must have answered exactly N requests.

### Caveats

- **Everything shares 2 cores**: the server (and PostgreSQL), the fake (Node, one thread)
  and h2load. The CPU column shows who used what; `rest` is the load generator or this
  script, plus other people's work on the machine. Before each run, the script waits up
  to 60 s for the machine to go idle.
- The two sides do not start alike. An h2load row includes h2load's TLS handshakes. A
  pushgate row does not include its connection set-up (the warm-up Publish made it), but
  it does include the fan-out, the outbox writes and the bookkeeping: the cost being
  measured.

### Figures

"""


def write_readme(text: str) -> None:
    replace_readme_block(DELIVERY_START, DELIVERY_END, text, f"{SECTION_TITLE}\n\n{SECTION_INTRO}")


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="pushgate delivery benchmark (see README.md)")
    p.add_argument("--sizes", default="10000,100000", help="topic sizes, comma-separated")
    p.add_argument("--stores", default="sqlite", help="sqlite and/or postgresql")
    p.add_argument("--write-readme", action="store_true", help="rewrite bench/README.md figures")
    p.add_argument("--profile", action="store_true", help="py-spy the largest pushgate run")
    p.add_argument(
        "--ref",
        help="benchmark pushgate's src/ at this git revision (e.g. HEAD) instead of the "
        "installed work tree",
    )
    p.add_argument(
        "--postgres-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="where to CREATE and DROP the throw-away database",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per fan-out at most")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="PUSHGATE_NAME=VALUE",
        help="a setting for the pushgate servers (repeatable), e.g. "
        "PUSHGATE_DELIVERY_BATCH_SIZE=1000",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="wait up to this many seconds before each run for the machine to be idle",
    )
    p.add_argument("--quiet-threshold", type=float, default=15.0, help="idle: busy %% below")
    args = p.parse_args(argv)
    try:
        args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s})
    except ValueError:
        p.error("--sizes: comma-separated integers")
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes: at least one size, each >= 1")
    pairs = [item.partition("=") for item in args.server_env]
    if any(not name.startswith("PUSHGATE_") or not eq for name, eq, _ in pairs):
        p.error("--server-env: PUSHGATE_NAME=VALUE")
    args.server_env = {name: value for name, _, value in pairs}
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if not args.stores or set(args.stores) - {"sqlite", "postgresql"}:
        p.error("--stores: sqlite and/or postgresql")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for tool, package in (("h2load", "nghttp2-client"), ("node", "nodejs")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y {package}")
    signal.signal(signal.SIGTERM, _interrupt)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python bench/delivery.py", *given])
    rows: list[Row] = []
    profiles: list[dict[str, Any]] = []
    failures: list[str] = []
    quiet = (args.quiet_wait, args.quiet_threshold)
    with tempfile.TemporaryDirectory(prefix="pushgate-delivery-") as tmp:
        workdir = Path(tmp)
        source = None
        info = machine("from the installed work tree")
        if args.ref:
            source, info["commit"] = export_source(args.ref, workdir)
            info["source"] = f"from git revision {args.ref}"
            log(f"pushgate from {args.ref} = {info['commit']}, unpacked in {source}")
        plan = Plan(
            sizes=args.sizes,
            stores=args.stores,
            admin_url=args.postgres_admin_url,
            source=source,
            profile=args.profile,
            timeout=args.timeout,
            quiet=quiet,
            server_env=args.server_env,
        )
        ca, cert, key = make_tls(workdir, source)
        key_pem = apns_signing_key()
        fake = Fake(cert, key, workdir)
        try:
            fake.start()
            log(f"APNs fake pid {fake.pid} on port {fake.port} (stats {fake.stats_port})")
            largest = max(plan.sizes)
            warm_up_fake(fake, workdir, min(largest, 20_000), key_pem)
            for clients, streams in H2LOAD_SETTINGS:
                rows.append(h2load_row(fake, workdir, largest, clients, streams, key_pem, quiet))
            for store in plan.stores:
                for size in plan.sizes:
                    profile = plan.profile and size == largest
                    try:
                        row, summary = pushgate_row(
                            store, size, workdir, plan, fake, ca, key_pem, profile
                        )
                    except Exception as exc:  # keep the other runs' figures
                        log(f"pushgate {store} / {size:,} FAILED: {exc!r}")
                        failures.append(
                            f"- pushgate {store} / {size:,}: FAILED, {one_line(repr(exc), 400)}"
                        )
                        continue
                    rows.append(row)
                    if summary:
                        profiles.append(summary)
        finally:
            fake.stop()
            _keep_log_tail(workdir / "apns-fake.log")
    ceiling = max((r.rate for r in rows if r.kind == "h2load" and r.ok), default=0.0)
    text = report(rows, ceiling, profiles, info, command, failures)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    dump: dict[str, Any] = {"machine": info, "command": command, "ceiling": ceiling}
    dump["rows"] = [asdict(r) for r in rows]
    dump["profiles"] = profiles
    dump["failures"] = failures
    (RESULTS_DIR / "delivery.json").write_text(json.dumps(dump, indent=2, default=str))
    if args.write_readme:
        write_readme(text)
        log(f"figures written to {README.relative_to(REPO)}")
    bad = [r for r in rows if not r.ok]
    for r in bad:
        log(f"FAILED: {r.target} / {r.endpoints:,}: {r.notes}")
    return 1 if bad or failures else 0


if __name__ == "__main__":
    sys.exit(main())
