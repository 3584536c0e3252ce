"""Control-plane benchmark: signed CreatePlatformEndpoint and GetEndpointAttributes under load.

One command runs every target side by side and prints a table::

    python bench/control_plane.py [--write-readme] [--profile]

Targets: ``pushgate serve`` on SQLite (access log off, then on), on PostgreSQL (a throw-away
database) and ``moto_server`` as the reference. Per target: start it, create one GCM
platform application with boto3, then

* ``create-max``: wrk replays pre-signed CreatePlatformEndpoint requests (a distinct token
  each, so every request is a real insert) as fast as the server answers;
* ``get-max``: the same for GetEndpointAttributes over the endpoints just created;
* ``create @1,000/s``: an open-loop generator (asyncio, raw keep-alive sockets) sends
  CreatePlatformEndpoint on a fixed timetable and measures latency from each request's
  *scheduled* send time, so a stalled server cannot hide its queueing delay.

After each phase the endpoints are listed through the API (boto3 paginator) and the count
compared with the 200 responses, so every request is known to have done real work.
Servers run in their own process groups on 127.0.0.1 and are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LUA = BENCH_DIR / "wrk_requests.lua"
README = BENCH_DIR / "README.md"
RESULTS_DIR = BENCH_DIR / "results"  # git-ignored: profiles, server log tails, raw JSON
VENV_BIN = Path(sys.executable).parent

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIABENCHMARK0000001"
SECRET_ACCESS_KEY = "bench/secret/access/key/0000000000000000"
API_VERSION = "2010-03-31"
TOKEN_LENGTH = 152  # an FCM registration token's usual length
CLK_TCK = os.sysconf("SC_CLK_TCK")

FIGURES_START = "<!-- figures:start -->"
FIGURES_END = "<!-- figures:end -->"

TARGETS = (
    "pushgate-sqlite",
    "pushgate-sqlite+log",
    "pushgate-postgresql",
    "pushgate-sqlite-2w",
    "pushgate-postgresql-2w",
    "moto_server",
)


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- targets and servers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "pushgate" | "moto"
    database: str | None = None  # "sqlite" | "postgresql"
    access_log: bool = False
    workers: int = 1  # pushgate serve --workers

    @property
    def label(self) -> str:
        if self.kind == "moto":
            return "moto_server"
        label = f"pushgate {self.database}"
        if self.workers > 1:
            label += f", {self.workers} workers"
        return label + (" + access log" if self.access_log else "")


def make_target(name: str) -> Target:
    targets = {
        "pushgate-sqlite": Target(name, "pushgate", "sqlite"),
        "pushgate-sqlite+log": Target(name, "pushgate", "sqlite", access_log=True),
        "pushgate-sqlite-w2": Target(name, "pushgate", "sqlite", workers=2),
        "pushgate-postgresql": Target(name, "pushgate", "postgresql"),
        "pushgate-postgresql-w2": Target(name, "pushgate", "postgresql", workers=2),
        "pushgate-sqlite-2w": Target(name, "pushgate", "sqlite", workers=2),
        "pushgate-postgresql-2w": Target(name, "pushgate", "postgresql", workers=2),
        "moto_server": Target(name, "moto"),
    }
    if name not in targets:
        raise SystemExit(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    return targets[name]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU time of one process so far (0 if it is gone); with
    ``reaped_children``, that of its children that ended and were waited for instead."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    first = 13 if reaped_children else 11  # cutime, cstime or utime, stime
    return (int(fields[first]) + int(fields[first + 1])) / CLK_TCK


def _group_stats(pgid: int) -> Iterator[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                yield int(entry.name), fields


def group_pids(pgid: int) -> list[int]:
    return [pid for pid, _ in _group_stats(pgid)]


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of a process group: its live processes and the children they reaped
    (``pushgate serve --workers N`` runs N worker processes under one parent)."""
    return sum(sum(int(v) for v in f[11:15]) for _, f in _group_stats(pgid)) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent by the whole machine, all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


_PG_BACKEND = re.compile(rb"^postgres: [^:]+: \S+ (\S+) (?:\S+\(\d+\)|\[local\])")
_PG_AUTOVACUUM = re.compile(rb"^postgres: [^:]+: autovacuum worker (\S+)")


def postgres_cpu_seconds(database: str) -> dict[int | str, float]:
    """CPU time of the PostgreSQL processes working for ``database``, by pid.

    Its backends, autovacuum workers on it, and the shared processes (WAL writer,
    checkpointer...); backends of other databases are someone else's work. Backends that
    have ended are found in the postmaster's reaped-children time, under key "ended": a pool
    that opens and closes connections under load spends its database's CPU there.
    """
    times: dict[int | str, float] = {}
    for pid, postmaster in postgres_processes(database):
        times[pid] = proc_cpu_seconds(pid)
        if postmaster:
            times["ended"] = proc_cpu_seconds(pid, reaped_children=True)
    return times


def postgres_processes(database: str) -> list[tuple[int, bool]]:
    """(pid, is the postmaster) of the processes that ``postgres_cpu_seconds`` counts."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
            if title.startswith(b"postgres: "):
                match = _PG_BACKEND.match(title) or _PG_AUTOVACUUM.match(title)
                if match is None or match[1] == database.encode():
                    pids.append((int(entry.name), False))
            elif title.split(b" ", 1)[0].endswith(b"/bin/postgres"):
                pids.append((int(entry.name), True))
    return pids


def one_line(text: str, limit: int = 200) -> str:
    """A server's error text as one short line, fit for a Markdown list."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class Server:
    """A server process in its own process group; ``stop`` ends that group and nothing else."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.database: str | None = None  # the PostgreSQL database, for its CPU time

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, port: int, ready_path: str, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                try:
                    conn.request("GET", ready_path)
                    status = conn.getresponse().status
                finally:
                    conn.close()
                if status == 200 or (ready_path == "/" and status < 500):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A throw-away database (URL, name), dropped afterwards whatever happens."""
    import asyncpg

    name = f"pushgate_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}", name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def running(
    target: Target, workdir: Path, admin_url: str, source: Path | None
) -> Iterator[tuple[Server, int]]:
    """Start the target on a free loopback port; pushgate from ``source`` when given."""
    port = free_port()
    log_path = workdir / f"{target.name}.log"
    with contextlib.ExitStack() as stack:
        database = None
        if target.kind == "moto":
            argv = [str(VENV_BIN / "moto_server"), "-H", HOST, "-p", str(port)]
            env = dict(os.environ)
            ready = "/"
        else:
            data_dir = workdir / f"{target.name}-data"
            data_dir.mkdir()
            if target.database == "postgresql":
                url, database = stack.enter_context(postgres_database(admin_url))
            else:
                url = f"sqlite:///{data_dir / 'pushgate.db'}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
            env |= {
                "PUSHGATE_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "PUSHGATE_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                "PUSHGATE_ACCESS_LOG": "true" if target.access_log else "false",
            }
            if target.workers > 1:
                env["PUSHGATE_WORKERS"] = str(target.workers)
            if source is not None:  # ahead of the editable install's path entry
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
                )
            argv = [str(VENV_BIN / "pushgate"), "serve", "--host", HOST, "--port", str(port)]
            argv += ["--database-url", url, "--data-dir", str(data_dir)]
            argv += ["--workers", str(target.workers)]
            ready = "/readyz"
        server = Server(target.name, argv, env, log_path)
        server.database = database
        stack.callback(_keep_log_tail, log_path)
        stack.callback(server.stop)
        server.start(port, ready)
        if target.workers > 1:
            _check_workers(server, target.workers)
        yield server, port


def _check_workers(server: Server, workers: int) -> None:
    """Fail unless the server really runs ``workers`` processes (older revisions of pushgate
    ignore PUSHGATE_WORKERS)."""
    found = 0
    for _ in range(50):
        found = len(group_pids(server.pid))
        if found > workers:  # the workers and their parent
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name}: {found} process(es), not {workers} workers and a parent")


def export_source(ref: str, into: Path) -> tuple[Path, str]:
    """``src/`` of a git revision, unpacked outside the work tree; (path, short hash)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{ref}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src", commit


_TROUBLE = re.compile(
    r'Traceback|Error on request|"level": "(?:warning|error|critical)"'
    r'|" [45]\d\d -|"status": [45]\d\d'
)


def _keep_log_tail(path: Path, lines: int = 300) -> None:
    """A server's trouble (tracebacks, errors, 4xx/5xx lines, at most 2,000 lines) and its
    last lines, kept in bench/results/ for a look afterwards."""
    with contextlib.suppress(OSError):
        RESULTS_DIR.mkdir(exist_ok=True)
        text = path.read_text(errors="replace").splitlines()
        trouble: list[str] = []
        in_traceback = False
        for line in text[:-lines]:
            in_traceback = in_traceback or line.startswith("Traceback")
            if in_traceback or _TROUBLE.search(line):
                trouble.append(line)
            if in_traceback and line and not line.startswith((" ", "Traceback")):
                in_traceback = False
        kept = [*trouble[:2000], "--- last lines ---", *text[-lines:]]
        (RESULTS_DIR / f"server-{path.stem}.log").write_text("\n".join(kept) + "\n")


# -- CPU accounting --------------------------------------------------------------------------


@dataclass
class CpuUsage:
    """CPU use during a phase, each in % of one core (the machine has ``nproc`` x 100%)."""

    server: float = math.nan
    database: float = math.nan  # PostgreSQL working for the benchmark database
    loadgen: float = math.nan  # wrk, or this process for the paced generator
    other: float = math.nan  # everything else on the machine: noise from other work


class CpuMeter:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.usage = CpuUsage()

    def _snapshot(self) -> tuple[tuple[float, ...], dict[int | str, float]]:
        ours = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        db = self.server.database
        return (
            time.monotonic(),
            machine_busy_seconds(),
            group_cpu_seconds(self.server.pid),
            ours.ru_utime + ours.ru_stime + kids.ru_utime + kids.ru_stime,
        ), postgres_cpu_seconds(db) if db else {}

    def __enter__(self) -> CpuMeter:
        self._start, self._db_start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        end, db_end = self._snapshot()
        wall, busy, server, gen = (b - a for a, b in zip(self._start, end, strict=True))
        # New processes count from zero. Those that ended moved their whole time into
        # "ended", so what they had used before the phase comes off again.
        before = self._db_start
        db = sum(max(0.0, t - before.get(p, 0.0)) for p, t in db_end.items())
        db = max(0.0, db - sum(t for p, t in before.items() if p not in db_end))
        pct = 100 / wall
        self.usage = CpuUsage(
            server=server * pct,
            database=db * pct if self.server.database else math.nan,
            loadgen=gen * pct,
            other=max(0.0, busy - server - db - gen) * pct,
        )


def wait_for_quiet(max_wait: float, threshold: float) -> float:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle; returns its busy %.

    The servers are idle between phases, so what is busy then is someone else's work (a test
    suite, a build) that would steal the cores the benchmark measures.
    """
    deadline = time.monotonic() + max_wait
    waited = False
    while True:
        b0, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy = (machine_busy_seconds() - b0) / (time.monotonic() - t0) * 100
        if busy <= threshold or time.monotonic() >= deadline:
            if waited or busy > threshold:
                log(f"machine busy {busy:.0f}% of a core before the phase")
            return busy
        if not waited:
            log(f"machine busy {busy:.0f}% of a core: waiting up to {max_wait:.0f}s for quiet")
            waited = True


# -- pre-signed requests ---------------------------------------------------------------------


def _sign_chunk(job: tuple[str, list[dict[str, str]]]) -> list[bytes]:
    """Whole HTTP/1.1 requests, each signed by botocore's SigV4Auth just as boto3 signs."""
    host, chunk = job
    creds = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    out = []
    for params in chunk:
        body = urlencode(params).encode()  # botocore's query serializer encodes the same way
        request = AWSRequest(
            method="POST",
            url=f"http://{host}/",
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "Host": host,
            },
        )
        SigV4Auth(creds, "sns", REGION).add_auth(request)
        lines = ["POST / HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
        lines += ["User-Agent: pushgate-bench", f"Content-Length: {len(body)}"]
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return out


def sign_all(pool: ProcessPoolExecutor, port: int, params: list[dict[str, str]]) -> list[bytes]:
    host = f"{HOST}:{port}"
    size = 2000
    jobs = [(host, params[i : i + size]) for i in range(0, len(params), size)]
    return [raw for chunk in pool.map(_sign_chunk, jobs) for raw in chunk]


def create_params(app_arn: str, prefix: str, count: int) -> list[dict[str, str]]:
    def token(i: int) -> str:
        head = f"{prefix}{i:09d}:"
        return head + "x" * (TOKEN_LENGTH - len(head))

    action = {"Action": "CreatePlatformEndpoint", "Version": API_VERSION}
    return [{**action, "PlatformApplicationArn": app_arn, "Token": token(i)} for i in range(count)]


def get_params(arns: Sequence[str], count: int) -> list[dict[str, str]]:
    action = {"Action": "GetEndpointAttributes", "Version": API_VERSION}
    return [{**action, "EndpointArn": arns[i % len(arns)]} for i in range(count)]


def write_requests(path: Path, requests: list[bytes]) -> None:
    """The format bench/wrk_requests.lua reads: a length line, then that many bytes."""
    with path.open("wb") as f:
        for raw in requests:
            f.write(b"%d\n" % len(raw))
            f.write(raw)


# -- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    phase: str
    rate: float  # responses/s achieved
    p50_ms: float
    p99_ms: float
    max_ms: float
    responses: int
    non200: int
    errors: int  # connection errors, timeouts, requests left unanswered
    created: int  # endpoints the server gained during the phase (listed through the API)
    created_expected: str  # what the 200 responses imply
    count_ok: bool  # created is within created_expected
    cpu: CpuUsage
    background_before: float  # machine busy % just before the phase
    notes: list[str] = field(default_factory=list)
    wrapped: bool = False  # wrk ran out of requests and re-sent some: the run doesn't count

    @property
    def valid(self) -> bool:
        return self.count_ok and not self.wrapped

    @property
    def clean(self) -> bool:
        return self.valid and self.non200 == 0 and self.errors == 0


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def fmt_pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| target | phase | req/s | p50 ms | p99 ms | max ms | non-200 | errors "
        "| endpoints created (expected) | CPU % server / DB / load-gen / other |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        created = f"{r.created:,} ({r.created_expected})" + ("" if r.count_ok else " MISMATCH")
        created += " (requests ran out)" if r.wrapped else ""
        cpu = " / ".join(
            fmt_pct(v) for v in (r.cpu.server, r.cpu.database, r.cpu.loadgen, r.cpu.other)
        )
        lines.append(
            f"| {r.target} | {r.phase} | {r.rate:,.0f} | {fmt_ms(r.p50_ms)} | {fmt_ms(r.p99_ms)} "
            f"| {fmt_ms(r.max_ms)} | {r.non200:,} | {r.errors:,} | {created} | {cpu} |"
        )
    return "\n".join(lines)


# -- wrk: maximum throughput -----------------------------------------------------------------


@dataclass(frozen=True)
class WrkSettings:
    threads: int
    connections: int
    duration: int


def run_wrk(port: int, request_file: Path, wrk: WrkSettings) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{wrk.threads}",
        f"-c{wrk.connections}",
        f"-d{wrk.duration}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}/",
        "--",
        str(request_file),
        str(wrk.threads),
    ]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=wrk.duration + 60, check=False
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    stats: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return stats


# -- open-loop paced generator ---------------------------------------------------------------


@dataclass
class PacedResult:
    scheduled: int
    ok: int
    non200: int
    errors: int
    unanswered: int  # still queued or in flight at the drain deadline
    latencies: list[float]  # seconds, from the scheduled send time
    service: list[float]  # seconds, from the actual send time
    achieved_rate: float
    max_dispatch_lag: float
    first_error: str = ""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Status, whether the server will close the connection, and the body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    close = lines[0].startswith(b"HTTP/1.0")
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close" or (close and value != b"keep-alive")
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(parts)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body, close = await reader.read(), True
    return status, close, body


async def paced(
    port: int, payloads: Sequence[bytes], rate: float, duration: float, connections: int
) -> PacedResult:
    """Send ``rate`` requests/s for ``duration`` s on a fixed timetable (open loop).

    Each request's latency runs from the moment it was *scheduled*: when every connection is
    busy, requests wait in the queue and that wait counts, as it would for a real client
    (no coordinated omission). Unanswered requests are given up after a bounded drain.

    Times come from ``time.perf_counter``: uvloop's ``loop.time()`` only has milliseconds.
    Its timers round to the millisecond too, so a request may leave up to 0.5 ms before its
    slot; its latency then runs from when it actually left.
    """
    clock = time.perf_counter
    total = min(len(payloads), int(rate * duration))
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    service: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    first_error = ""
    last_done = 0.0

    async def worker(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        nonlocal errors, first_error, last_done
        try:
            while (item := await queue.get()) is not None:
                index, scheduled = item
                try:
                    if conn is None:
                        conn = await asyncio.open_connection(HOST, port)
                    sent = clock()
                    conn[1].write(payloads[index])
                    status, close, body = await _read_response(conn[0])
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors += 1
                    first_error = first_error or repr(exc)
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    continue
                now = clock()
                latencies.append(now - scheduled)
                service.append(now - sent)
                last_done = now
                statuses[status] += 1
                if status != 200 and not first_error:
                    first_error = f"{status} {body[:300]!r}"
                if close:
                    conn[1].close()
                    conn = None
        finally:
            if conn is not None:
                conn[1].close()

    opened = [await asyncio.open_connection(HOST, port) for _ in range(connections)]
    workers = [asyncio.create_task(worker(conn)) for conn in opened]
    start = clock() + 0.05
    max_lag = 0.0
    for i in range(total):
        when = start + i / rate
        delay = when - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        now = clock()
        max_lag = max(max_lag, now - when)
        queue.put_nowait((i, min(when, now)))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=max(10.0, duration))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    answered = len(latencies)
    span = last_done - start
    return PacedResult(
        scheduled=total,
        ok=statuses[200],
        non200=answered - statuses[200],
        errors=errors,
        unanswered=total - answered - errors,
        latencies=latencies,
        service=service,
        achieved_rate=answered / span if answered and span > 0 else 0.0,
        max_dispatch_lag=max_lag,
        first_error=first_error,
    )


def run_paced(
    port: int, payloads: Sequence[bytes], rate: float, duration: float, connections: int
) -> PacedResult:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    gc.collect()
    gc.freeze()  # no full collections over boto3's heap in the middle of the timetable
    try:
        with runner:
            return runner.run(paced(port, payloads, rate, duration, connections))
    finally:
        gc.unfreeze()


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# -- profile ---------------------------------------------------------------------------------

_PROCESS_FRAME = re.compile(r'^(?:process \d+:".*?"(?:;|$))+')
_FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_LOOP_ENTRY = ("Runner.run (", "BaseEventLoop.run_forever (", "BaseEventLoop.run_until_complete (")
EVENT_LOOP = "<event loop: uvloop/libuv C code, HTTP parsing, socket I/O>"
NATIVE = "<no Python frames: native code>"


def _short_frame(frame: str) -> str:
    match = _FRAME_RE.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    line = f":{match['line']}" if match["line"] else ""
    return f"{match['func']} ({path}{line})"


def summarise_profile(collapsed: str, rate: int, duration: int, top: int = 15) -> dict[str, Any]:
    """Top functions by own and by total samples, from py-spy's collapsed stacks.

    Frames from the process entry down to the event loop's ``run`` (typer, uvicorn.run,
    asyncio.Runner) are in every sample and are cut off; a sample whose Python stack ends
    there was spent in the event loop's own C code.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    ours: Counter[str] = Counter()  # pushgate's own functions, by total
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # With --subprocesses, each stack starts with the process and its command line,
        # which may itself hold a ";" (multiprocessing's spawn_main).
        stack = _PROCESS_FRAME.sub("", stack)
        frames = [_short_frame(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        cut = max((i for i, f in enumerate(frames) if f.startswith(_LOOP_ENTRY)), default=-1)
        frames = frames[cut + 1 :] or [EVENT_LOOP if frames else NATIVE]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
            if "(pushgate/" in frame:
                ours[frame] += count
    return {
        "samples": samples,
        "busy": samples / (rate * duration),
        "own": [(f, n / samples) for f, n in own.most_common(top)] if samples else [],
        "total": [(f, n / samples) for f, n in total.most_common(top)] if samples else [],
        "pushgate": [(f, n / samples) for f, n in ours.most_common(top)] if samples else [],
    }


def profile_text(summary: dict[str, Any]) -> str:
    lines = [
        f"py-spy profile of {summary['target']} under create-max: "
        f"{summary['rate_under_profiler']:,.0f} req/s while sampled, server CPU "
        f"{summary['server_cpu']:.0f}% of a core (py-spy {summary['py_spy_cpu']:.0f}%, other work "
        f"{summary['other_cpu']:.0f}%), "
        f"{summary['samples']:,} non-idle samples "
        f"({summary['busy']:.0%} of wall time). Collapsed stacks: {summary['raw']}.",
        "",
        "| own % | top 15 by own time | total % | top 15 by total time |",
        "|--:|---|--:|---|",
    ]
    for (f_own, p_own), (f_tot, p_tot) in zip(summary["own"], summary["total"], strict=False):
        lines.append(f"| {p_own:.1%} | `{f_own}` | {p_tot:.1%} | `{f_tot}` |")
    lines += ["", "pushgate's own functions by total time:", ""]
    lines += [f"- {p:.1%} `{f}`" for f, p in summary["pushgate"]]
    return "\n".join(lines)


# -- one target ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    wrk: WrkSettings
    create_requests: int
    get_requests: int
    rate: float
    paced_duration: float
    paced_connections: int
    profile: bool
    profile_duration: int
    admin_url: str
    quiet_wait: float
    quiet_threshold: float
    attempts: int
    max_other: float
    source: Path | None  # pushgate's src/ from --ref; None: the installed work tree


def sns_client(port: int) -> Any:
    return boto3.client(
        "sns",
        endpoint_url=f"http://{HOST}:{port}",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120),
    )


class TargetRun:
    """Everything one target's phases share: the server, its port, a client, the app."""

    def __init__(
        self,
        target: Target,
        server: Server,
        port: int,
        workdir: Path,
        plan: Plan,
        pool: ProcessPoolExecutor,
    ) -> None:
        self.target = target
        self.server = server
        self.port = port
        self.workdir = workdir
        self.plan = plan
        self.pool = pool
        self.prefix = uuid.uuid4().hex[:8]
        self.client = sns_client(port)
        self.app_arn: str = self.client.create_platform_application(
            Name=f"bench-{self.prefix}",
            Platform="GCM",
            Attributes={"PlatformCredential": "AIzaBench"},
        )["PlatformApplicationArn"]

    def endpoint_arns(self) -> list[str]:
        paginator = self.client.get_paginator("list_endpoints_by_platform_application")
        pages = paginator.paginate(PlatformApplicationArn=self.app_arn)
        return [e["EndpointArn"] for page in pages for e in page["Endpoints"]]

    def pg_sessions(self) -> int | None:
        """Sessions ever opened on the benchmark database (pg_stat_database.sessions)."""
        database = self.server.database
        if database is None:
            return None
        import asyncpg

        async def query() -> int:
            conn = await asyncpg.connect(self.plan.admin_url, timeout=10)
            try:
                sql = "SELECT sessions FROM pg_stat_database WHERE datname = $1"
                return int(await conn.fetchval(sql, database))
            finally:
                await conn.close()

        return asyncio.run(query())

    def note_sessions(self, row: Row, before: int | None) -> None:
        after = self.pg_sessions()
        if before is not None and after is not None:
            row.notes.append(f"{after - before:,} PostgreSQL connections opened during the phase")

    def build_create(self, tag: str) -> Callable[[int, int], list[bytes]]:
        """``n`` signed CreatePlatformEndpoint with tokens unique to ``tag`` and the attempt."""
        return lambda n, attempt: sign_all(
            self.pool, self.port, create_params(self.app_arn, f"{self.prefix}{tag}{attempt}", n)
        )

    def build_get(self, arns: Sequence[str]) -> Callable[[int, int], list[bytes]]:
        return lambda n, _attempt: sign_all(self.pool, self.port, get_params(arns, n))

    def warm_up(self) -> None:
        """A few endpoints through boto3 itself: checks the setup end to end, fills caches."""
        for i in range(20):
            self.client.create_platform_endpoint(
                PlatformApplicationArn=self.app_arn,
                Token=f"warmup-{self.prefix}-{i:04d}".ljust(TOKEN_LENGTH, "w"),
            )

    def best_of(self, phase: str, once: Callable[[int], Row]) -> Row:
        """Run a phase up to ``attempts`` times until other work left the machine alone.

        The table shows the attempt during which other processes took the least CPU (among
        those whose endpoint count checked out), and says so in a note.
        """
        rows: list[Row] = []
        for attempt in range(self.plan.attempts):
            row = once(attempt)
            rows.append(row)
            if row.valid and row.cpu.other <= self.plan.max_other:
                break
            if attempt + 1 < self.plan.attempts:
                log(
                    f"{self.target.name} {phase}: other work took {row.cpu.other:.0f}% of a "
                    "core (or the count was off); running the phase again"
                )
        best = min([r for r in rows if r.valid] or rows, key=lambda r: r.cpu.other)
        if len(rows) > 1:
            others = ", ".join(f"{r.cpu.other:.0f}%" for r in rows)
            best.notes.append(
                f"attempt {rows.index(best) + 1} of {len(rows)} shown; other work took "
                f"{others} of a core during each"
            )
        return best

    def wrk_phase(
        self, phase: str, build: Callable[[int, int], list[bytes]], count: int, *, inserts: bool
    ) -> Row:
        """wrk over ``count`` signed requests (twice as many next time if they ran out)."""
        counts = [count]

        def once(attempt: int) -> Row:
            row, wraps = self._wrk_once(phase, build, counts[-1], attempt, inserts=inserts)
            counts.append(counts[-1] * 2 if wraps else counts[-1])
            return row

        return self.best_of(phase, once)

    def _wrk_once(
        self,
        phase: str,
        build: Callable[[int, int], list[bytes]],
        count: int,
        attempt: int,
        *,
        inserts: bool,
    ) -> tuple[Row, int]:
        name = self.target.name
        before = len(self.endpoint_arns())
        t0 = time.monotonic()
        path = self.workdir / f"{name}-{phase}.req"
        write_requests(path, build(count, attempt))
        log(f"{name} {phase}: {count:,} requests signed in {time.monotonic() - t0:.1f}s")
        background = wait_for_quiet(self.plan.quiet_wait, self.plan.quiet_threshold)
        sessions = self.pg_sessions()
        try:
            with CpuMeter(self.server) as meter:
                stats = run_wrk(self.port, path, self.plan.wrk)
        finally:
            path.unlink()
        created = len(self.endpoint_arns()) - before
        errors = sum(stats[k] for k in ("connect_errors", "read_errors", "write_errors"))
        errors += stats["timeouts"]
        ok = stats["ok"]
        if inserts:
            # wrk stops with requests in flight: the server may still carry out one per
            # connection (and any that timed out) after wrk stopped counting.
            slack = self.plan.wrk.connections + errors
            expected, count_ok = f"{ok:,}..{ok + slack:,}", ok <= created <= ok + slack
        else:
            expected, count_ok = "0", created == 0
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
            wrapped=bool(stats["wraps"]),
            cpu=meter.usage,
            background_before=background,
        )
        self.note_sessions(row, sessions)
        if stats["wraps"]:
            row.notes.append(f"requests ran out ({stats['wraps']} wraps): some were re-sent")
            log(f"{name} {phase}: the {count:,} requests ran out")
        if stats["first_error"]:
            row.notes.append(f"first non-200: {one_line(stats['first_error'])}")
        log(
            f"{name} {phase}: {row.rate:,.0f} req/s, p50 {row.p50_ms:.2f} ms, "
            f"p99 {row.p99_ms:.2f} ms, CPU {asdict(row.cpu)}; {stats}"
        )
        return row, stats["wraps"]

    def paced_phase(self) -> Row:
        return self.best_of(f"create @{self.plan.rate:g}/s", self._paced_once)

    def _paced_once(self, attempt: int) -> Row:
        plan, name = self.plan, self.target.name
        count = int(plan.rate * plan.paced_duration)
        payloads = self.build_create("b")(count, attempt)
        before = len(self.endpoint_arns())
        background = wait_for_quiet(plan.quiet_wait, plan.quiet_threshold)
        log(f"{name} create @{plan.rate:g}/s: {count:,} requests signed, running")
        sessions = self.pg_sessions()
        with CpuMeter(self.server) as meter:
            result = run_paced(
                self.port, payloads, plan.rate, plan.paced_duration, plan.paced_connections
            )
        created = len(self.endpoint_arns()) - before
        slack = result.unanswered + result.errors  # may have been carried out all the same
        ok = result.ok
        row = Row(
            target=self.target.label,
            phase=f"create @{plan.rate:,.0f}/s",
            rate=result.achieved_rate,
            p50_ms=percentile(result.latencies, 50) * 1000,
            p99_ms=percentile(result.latencies, 99) * 1000,
            max_ms=max(result.latencies, default=math.nan) * 1000,
            responses=len(result.latencies),
            non200=result.non200,
            errors=result.errors + result.unanswered,
            created=created,
            created_expected=f"{ok:,}" if not slack else f"{ok:,}..{ok + slack:,}",
            count_ok=ok <= created <= ok + slack,
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
        if result.first_error:
            row.notes.append(f"first error: {one_line(result.first_error)}")
        log(
            f"{name} paced: {row.rate:,.0f} req/s, p50 {row.p50_ms:.2f} ms, "
            f"p99 {row.p99_ms:.2f} ms, CPU {asdict(row.cpu)}, notes {row.notes}"
        )
        return row

    def profile_phase(self) -> dict[str, Any]:
        """py-spy samples the server during an extra create-max run (not in the table)."""
        py_spy = VENV_BIN / "py-spy"
        if not py_spy.exists():
            found = shutil.which("py-spy")
            if found is None:
                raise RuntimeError("py-spy not found: pip install py-spy")
            py_spy = Path(found)
        name, plan = self.target.name, self.plan
        path = self.workdir / f"{name}-profile.req"
        write_requests(path, self.build_create("p")(plan.create_requests, 0))
        RESULTS_DIR.mkdir(exist_ok=True)
        raw = RESULTS_DIR / f"profile-{name}.txt"
        rate = 100
        argv = [str(py_spy), "record", "--pid", str(self.server.pid), "--rate", str(rate)]
        argv += ["--duration", str(plan.profile_duration), "--function", "--nonblocking"]
        argv += ["--subprocesses"]  # the workers of `serve --workers N`
        argv += ["--format", "raw", "-o", str(raw)]
        background = wait_for_quiet(plan.quiet_wait, plan.quiet_threshold)
        log(f"{name}: profiling create-max with py-spy (machine busy {background:.0f}%)")
        spy = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            time.sleep(0.5)
            wrk = WrkSettings(plan.wrk.threads, plan.wrk.connections, plan.profile_duration)
            spy_cpu0 = proc_cpu_seconds(spy.pid)
            with CpuMeter(self.server) as meter:
                stats = run_wrk(self.port, path, wrk)
            spy_cpu = (proc_cpu_seconds(spy.pid) - spy_cpu0) / (wrk.duration) * 100
            _, err = spy.communicate(timeout=plan.profile_duration + 30)
            if spy.returncode != 0:
                raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
        finally:
            if spy.poll() is None:
                os.killpg(spy.pid, signal.SIGKILL)
                spy.wait()
            path.unlink(missing_ok=True)
        summary = summarise_profile(raw.read_text(), rate, plan.profile_duration)
        summary |= {
            "target": self.target.label,
            "rate_under_profiler": stats["requests"] / (stats["duration_us"] / 1e6),
            "server_cpu": meter.usage.server,
            "other_cpu": max(0.0, meter.usage.other - spy_cpu),
            "py_spy_cpu": spy_cpu,
            "raw": str(raw.relative_to(REPO)),
        }
        return summary


def run_target(
    target: Target, workdir: Path, plan: Plan, pool: ProcessPoolExecutor
) -> tuple[list[Row], dict[str, Any] | None]:
    with running(target, workdir, plan.admin_url, plan.source) as (server, port):
        log(f"{target.name}: pid {server.pid} on port {port}")
        run = TargetRun(target, server, port, workdir, plan, pool)
        run.warm_up()
        create = run.wrk_phase(
            "create-max", run.build_create("a"), plan.create_requests, inserts=True
        )
        arns = run.endpoint_arns()
        get = run.wrk_phase("get-max", run.build_get(arns), plan.get_requests, inserts=False)
        rows = [create, get, run.paced_phase()]
        profile = run.profile_phase() if plan.profile and target.kind == "pushgate" else None
    return rows, profile


# -- report ----------------------------------------------------------------------------------


def git_commit() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    return commit + (" + uncommitted changes in src/" if dirty else "")


def machine() -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": cpu,
        "python": platform.python_version(),
        "commit": git_commit(),
        "wrk": (wrk.stdout or wrk.stderr).split("[")[0].strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def goals(rows: Sequence[Row], rate: float) -> list[str]:
    by = {(r.target, r.phase): r for r in rows}
    paced_phase = f"create @{rate:,.0f}/s"
    moto_create = by.get(("moto_server", "create-max"))
    moto_get = by.get(("moto_server", "get-max"))
    out = []
    for label in dict.fromkeys(r.target for r in rows if r.target.startswith("pushgate")):
        create, get = by.get((label, "create-max")), by.get((label, "get-max"))
        paced_row = by.get((label, paced_phase))
        if create:
            verdict = "meets" if create.rate >= 3000 else "MISSES"
            out.append(
                f"- {label}: {create.rate:,.0f} CreatePlatformEndpoint/s {verdict} "
                "the >= 3,000/s goal"
            )
        if paced_row:
            met = paced_row.p99_ms < 10 and paced_row.rate >= 0.98 * rate and paced_row.clean
            out.append(
                f"- {label}: p99 {fmt_ms(paced_row.p99_ms)} ms at {paced_row.rate:,.0f} req/s "
                f"achieved {'meets' if met else 'MISSES'} the p99 < 10 ms at "
                f"{rate:,.0f} req/s goal"
            )
        if create and get and moto_create and moto_get:
            ahead = create.rate > moto_create.rate and get.rate > moto_get.rate
            out.append(
                f"- {label}: {'ahead of' if ahead else 'NOT ahead of'} moto_server "
                f"(create x{create.rate / moto_create.rate:.1f}, "
                f"get x{get.rate / moto_get.rate:.1f})"
            )
    return out


def report(
    rows: Sequence[Row],
    profiles: Sequence[dict[str, Any]],
    info: dict[str, str],
    plan: Plan,
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
        f"wrk `-t{plan.wrk.threads} -c{plan.wrk.connections} -d{plan.wrk.duration}s`; paced "
        f"generator {plan.rate:,.0f} req/s for {plan.paced_duration:g} s over "
        f"{plan.paced_connections} keep-alive connections, latency from the scheduled send "
        "time. CPU in % of one core (the machine has "
        f"{info['nproc']}00%): the server process; PostgreSQL (the benchmark database's "
        "backends and the shared WAL writer, checkpointer...); the load generator; everything "
        "else on the machine (other people's work: the noise).",
        "",
        table(rows),
        "",
        *goals(rows, plan.rate),
    ]
    if notes:
        parts += ["", "Notes:", "", *notes]
    parts += ["", "Machine busy % (of one core) just before each phase: " + "; ".join(busy) + "."]
    for summary in profiles:
        parts += ["", profile_text(summary)]
    return "\n".join(parts)


def replace_readme_block(start: str, end: str, text: str, heading: str = "") -> None:
    """Put ``text`` between the ``start``/``end`` markers of bench/README.md; without
    them, append ``heading`` and the marked block."""
    block = f"{start}\n{text}\n{end}"
    current = README.read_text() if README.exists() else "# Benchmarks\n"
    if start in current and end in current:
        head, rest = current.split(start, 1)
        README.write_text(head + block + rest.split(end, 1)[1])
    else:
        README.write_text(current.rstrip("\n") + "\n\n" + heading + block + "\n")


def write_readme(text: str) -> None:
    replace_readme_block(FIGURES_START, FIGURES_END, text, "## Figures\n\n")


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="pushgate control-plane benchmark (see README.md)")
    p.add_argument("--write-readme", action="store_true", help="rewrite bench/README.md figures")
    p.add_argument("--profile", action="store_true", help="py-spy the pushgate servers as well")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk phase")
    p.add_argument("--create-requests", type=int, default=50_000, help="signed per create-max")
    p.add_argument("--get-requests", type=int, default=50_000, help="signed per get-max")
    p.add_argument("--rate", type=float, default=1000.0, help="paced phase requests/s")
    p.add_argument("--paced-duration", type=float, default=10.0)
    p.add_argument("--paced-connections", type=int, default=16)
    p.add_argument("--profile-duration", type=int, default=10)
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="wait up to this many seconds before each phase for the machine to be idle",
    )
    p.add_argument("--quiet-threshold", type=float, default=15.0, help="idle: busy %% below")
    p.add_argument(
        "--attempts",
        type=int,
        default=3,
        help="run a phase up to this many times while other work takes over --max-other",
    )
    p.add_argument(
        "--max-other", type=float, default=20.0, help="%% of a core other processes may take"
    )
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
    args = p.parse_args(argv)
    for name in ("duration", "paced_duration", "profile_duration"):
        if not 1 <= getattr(args, name) <= 120:
            p.error(f"--{name.replace('_', '-')} must be 1..120 s")
    if not 0 <= args.quiet_wait <= 600:
        p.error("--quiet-wait must be 0..600 s")
    if not 1 <= args.attempts <= 5:
        p.error("--attempts must be 1..5")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C, so every server started here is stopped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    targets = [make_target(n.strip()) for n in args.targets.split(",") if n.strip()]
    signal.signal(signal.SIGTERM, _interrupt)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python bench/control_plane.py", *given])
    info = machine()
    rows: list[Row] = []
    profiles: list[dict[str, Any]] = []
    failures: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="pushgate-bench-") as tmp,
        ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool,
    ):
        source = None
        info["source"] = "from the installed work tree"
        if args.ref:
            info["source"] = f"from git revision {args.ref}"
            source, info["commit"] = export_source(args.ref, Path(tmp))
            log(f"pushgate from {args.ref} = {info['commit']}, unpacked in {source}")
        plan = Plan(
            wrk=WrkSettings(args.threads, args.connections, args.duration),
            create_requests=args.create_requests,
            get_requests=args.get_requests,
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
        for target in targets:
            try:
                target_rows, profile = run_target(target, Path(tmp), plan, pool)
            except Exception as exc:  # one target failing should not lose the others' figures
                log(f"{target.name} FAILED: {exc!r}")
                failures.append(f"- {target.label}: FAILED, {one_line(repr(exc), 300)}")
                continue
            rows += target_rows
            if profile:
                profiles.append(profile)
    text = report(rows, profiles, info, plan, command)
    if failures:
        text += "\n\nTargets that failed:\n\n" + "\n".join(failures)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    dump = {"machine": info, "command": command, "plan": asdict(plan)}
    dump["rows"] = [asdict(r) for r in rows]
    dump["profiles"] = profiles
    (RESULTS_DIR / "control_plane.json").write_text(json.dumps(dump, indent=2, default=str))
    if args.write_readme:
        write_readme(text)
        log(f"figures written to {README.relative_to(REPO)}")
    # Failure means lost or duplicated work, or pushgate answering with errors. Missing a
    # goal, or the reference falling over at a rate it cannot sustain, is reported only.
    bad = [r for r in rows if not r.valid or (r.target != "moto_server" and r.non200)]
    for r in bad:
        log(f"FAILED: {r.target} / {r.phase}: {r.notes}")
    return 1 if bad or failures else 0


if __name__ == "__main__":
    sys.exit(main())
