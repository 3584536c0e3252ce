"""HTTP/S subscriber benchmark: a topic's notifications POSTed to N web hooks, side by side
with moto_server.

One command runs every target and prints a table::

    python bench/subscribers.py [--ref HEAD] [--write-readme] [--profile]

Targets: ``pushgate serve`` on SQLite and on PostgreSQL (one process each, a throw-away
database for PostgreSQL), and ``moto_server``, which also POSTs SNS notifications to HTTP
subscribers, but synchronously inside Publish. Every subscriber is the same Node.js
receiver (``subscriber_receiver.js``): it answers each POST with 200 at once, counts it by
SNS message type and, on a ``SubscriptionConfirmation``, GETs the ``SubscribeURL`` as a
real subscriber does (https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.confirm.html).

Per target, with boto3:

1. **subscribe**: a topic with N ``http`` subscriptions, each its own URL
   ``http://127.0.0.1:<port>/s/<i>`` on the receiver. pushgate sends each one a
   ``SubscriptionConfirmation``; the run waits until the receiver has confirmed them all
   and ``ListSubscriptionsByTopic`` shows none pending ("confirmed/s", from the first
   Subscribe to the receiver's last confirmation). moto confirms at once and sends nothing.
2. **publish**: M messages to the topic, one Publish after the other; the latency of each
   call, and the wall time from the first Publish until the receiver has counted N x M
   Notifications, each (message, subscriber) once ("notifications delivered/s").
3. **memory**: the server's RSS before and at the end of the publish phase (sampled every
   100 ms in between), and the kernel's high-water mark.

moto_server posts inside Publish, one subscriber after the other, and (moto 5.2) only to
the first 100 subscriptions of a topic: its Topic.publish takes the first page of
``list_subscriptions_by_topic``. Its rows therefore count M x 100 notifications; its
message count is ``--moto-messages``. Servers, databases, CPU and RSS accounting come from
``control_plane.py`` and ``delivery.py``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from control_plane import (
    ACCESS_KEY_ID,
    HOST,
    README,
    REPO,
    RESULTS_DIR,
    SECRET_ACCESS_KEY,
    VENV_BIN,
    Server,
    Target,
    _interrupt,
    _keep_log_tail,
    export_source,
    fmt_ms,
    free_port,
    git_commit,
    log,
    make_target,
    one_line,
    percentile,
    postgres_database,
    proc_cpu_seconds,
    profile_text,
    replace_readme_block,
    running,
    sns_client,
    summarise_profile,
    wait_for_quiet,
)
from delivery import (
    MB,
    CpuWatch,
    Fake,
    RssSampler,
    fmt,
    hwm_now,
    rss_now,
    server_trouble,
    timeline,
    wait_for_count,
)

BENCH_DIR = Path(__file__).resolve().parent
RECEIVER_JS = BENCH_DIR / "subscriber_receiver.js"

SUBSCRIBERS_START = "<!-- subscribers:start -->"
SUBSCRIBERS_END = "<!-- subscribers:end -->"
SECTION_TITLE = "## HTTP/S subscribers: `subscribers.py`"

TARGETS = ("pushgate-sqlite", "pushgate-postgresql", "moto_server")
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"  # CREATE and DROP DATABASE there
NOTIFICATION = "Notification"
CONFIRMATION = "SubscriptionConfirmation"
PENDING = "PendingConfirmation"  # the SubscriptionArn SNS lists for a pending subscription
# moto 5's Topic.publish takes the first page of list_subscriptions_by_topic (100) only.
MOTO_PUBLISH_LIMIT = 100
MESSAGE = "bench notification {i}: the subscriber counts it"
SPY_RATE = 100  # py-spy samples/s
_POSTS_METRIC = re.compile(r"^pushgate_subscriber_posts_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


# -- the receiver ----------------------------------------------------------------------------


class Receiver(Fake):
    """``subscriber_receiver.js``, as a ``Fake`` to delivery.py's helpers (``wait_for_count``
    and ``CpuWatch``): its ``stats`` count the Notifications. One port serves the
    subscribers and ``/counts``."""

    def __init__(self, workdir: Path) -> None:  # not Fake's: no TLS, one port
        self.port = self.stats_port = free_port()
        argv = ["node", str(RECEIVER_JS), str(self.port)]
        self.server = Server(
            "subscriber-receiver", argv, dict(os.environ), workdir / "receiver.log"
        )

    def counts(self, method: str = "GET") -> dict[str, Any]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request(method, "/counts")
            counts: dict[str, Any] = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return counts

    def stats(self) -> dict[str, int]:
        c = self.counts()
        return {
            "count": c["posts"].get(NOTIFICATION, 0),
            "first": c["first"].get(NOTIFICATION, 0),
            "last": c["last"].get(NOTIFICATION, 0),
        }

    def reset(self) -> None:
        self.counts("DELETE")

    def url(self, index: int) -> str:
        return f"http://{HOST}:{self.port}/s/{index}"


# -- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    subscriptions: int
    messages: int
    moto_messages: int
    subscribe_threads: int
    admin_url: str
    source: Path | None  # pushgate's src/ from --ref; None: the installed work tree
    timeout: float
    quiet: tuple[float, float]  # wait_for_quiet(max_wait, threshold)
    profile: bool
    server_env: dict[str, str] = field(default_factory=dict)  # --server-env

    def messages_for(self, target: Target) -> int:
        return self.moto_messages if target.kind == "moto" else self.messages


@contextlib.contextmanager
def serving(target: Target, workdir: Path, plan: Plan) -> Iterator[tuple[Server, int]]:
    """The target on a free loopback port. moto through control_plane's ``running``;
    pushgate here, because it needs ``PUSHGATE_SUBSCRIPTION_ALLOWED_HOSTS`` (loopback
    subscribers are refused otherwise), and ``running`` passes no PUSHGATE_ setting on."""
    if target.kind == "moto":
        with running(target, workdir, plan.admin_url, None) as started:
            yield started
        return
    port = free_port()
    data_dir = workdir / f"{target.name}-data"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env |= {
        "PUSHGATE_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "PUSHGATE_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "PUSHGATE_ACCESS_LOG": "false",
        "PUSHGATE_SUBSCRIPTION_ALLOWED_HOSTS": HOST,
    }
    env |= plan.server_env
    if plan.source is not None:  # ahead of the editable install's path entry
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plan.source), env.get("PYTHONPATH")]))
    with contextlib.ExitStack() as stack:
        url, database = f"sqlite:///{data_dir / 'pushgate.db'}", None
        if target.database == "postgresql":
            url, database = stack.enter_context(postgres_database(plan.admin_url))
        argv = [str(VENV_BIN / "pushgate"), "serve", "--host", HOST, "--port", str(port)]
        server = Server(
            target.name,
            [*argv, "--database-url", url, "--data-dir", str(data_dir)],
            env,
            workdir / f"{target.name}.log",
        )
        server.database = database
        stack.callback(_keep_log_tail, server.log_path)
        stack.callback(server.stop)
        server.start(port, "/readyz")
        yield server, port


def subscriber_posts(port: int) -> Counter[str]:
    """pushgate's ``pushgate_subscriber_posts_total`` counters, keyed ``type/outcome``."""
    auth = base64.b64encode(f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}".encode()).decode()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Basic {auth}"})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out: Counter[str] = Counter()
    for line in text.splitlines():
        match = _POSTS_METRIC.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            out[f"{labels.get('type')}/{labels.get('outcome')}"] += int(float(match["value"]))
    return out


@contextlib.contextmanager
def py_spy(pid: int, raw: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``py-spy record`` of ``pid`` into ``raw`` (collapsed stacks) for as long as the
    block runs: started a second ahead, and told to write with SIGINT at the end."""
    raw.parent.mkdir(exist_ok=True)
    raw.unlink(missing_ok=True)
    argv = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--rate", str(SPY_RATE)]
    argv += ["--function", "--nonblocking", "--format", "raw", "-o", str(raw)]
    quiet = subprocess.DEVNULL
    spy = subprocess.Popen(argv, stdout=quiet, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(1.0)
        yield spy
        spy.send_signal(signal.SIGINT)
        stderr = spy.communicate(timeout=60)[1].decode(errors="replace")
        if not raw.exists():
            raise RuntimeError(f"py-spy wrote nothing: {stderr}")
    finally:
        if spy.poll() is None:  # an exception in the block: no profile wanted
            os.killpg(spy.pid, signal.SIGKILL)
            spy.wait()


# -- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    subscriptions: int
    messages: int
    per_message: int  # subscribers a message reaches: N, moto_server's first 100 of them
    subscribe_rate: float = math.nan  # Subscribe calls/s
    confirm_rate: float = math.nan  # N / (first Subscribe -> receiver's last confirmation)
    confirm_lag_ms: float = math.nan  # last Subscribe answered -> last confirmation
    publish_ms: list[float] = field(default_factory=list)
    delivered: int = 0  # Notifications the receiver counted, each (message, path) once
    rate: float = 0.0  # N x M / (first Publish -> the receiver's last Notification)
    steady_rate: float = math.nan  # between 10% and 90% of the notifications
    first_ms: float = math.nan  # first Publish -> first Notification
    seconds: float = math.nan  # first Publish -> last Notification
    publish_s: float = math.nan  # first Publish -> last Publish answered
    timeline: list[tuple[float, int]] = field(default_factory=list)
    server_cpu_s: float = math.nan
    cpu: dict[str, float] = field(default_factory=dict)  # % of a core: server, db, fake, rest
    rss_idle_mb: float = math.nan
    rss_peak_mb: float = math.nan
    rss_end_mb: float = math.nan
    hwm_mb: float = math.nan
    busy_before: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = True

    def fail(self, note: str) -> None:
        self.ok = False
        self.notes.append(note)

    @property
    def cpu_us_per_notification(self) -> float:
        total = self.per_message * self.messages
        return self.server_cpu_s / total * 1e6 if self.delivered >= total else math.nan


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| target | subscriptions | Subscribe calls/s | confirmed/s | messages "
        "| Publish p50 / p99 ms | notifications | delivered/s | 10-90% /s "
        "| first ms | all delivered s | server CPU µs per notification "
        "| RSS MB idle / peak / end | CPU % server / DB / receiver / rest | result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        latency = " / ".join(fmt_ms(percentile(r.publish_ms, q)) for q in (50, 99) if r.publish_ms)
        cpu = " / ".join(fmt(r.cpu.get(k, math.nan)) for k in ("server", "db", "fake", "rest"))
        rss = " / ".join(fmt(v) for v in (r.rss_idle_mb, r.rss_peak_mb, r.rss_end_mb))
        lines.append(
            f"| {r.target} | {r.subscriptions:,} | {fmt(r.subscribe_rate)} "
            f"| {fmt(r.confirm_rate)} | {r.messages:,} | {latency or '-'} "
            f"| {r.delivered:,} of {r.per_message * r.messages:,} | {fmt(r.rate)} "
            f"| {fmt(r.steady_rate)} | {fmt(r.first_ms)} | {fmt(r.seconds, '.2f')} "
            f"| {fmt(r.cpu_us_per_notification)} | {rss} | {cpu} "
            f"| {'ok' if r.ok else 'FAILED'} |"
        )
    return "\n".join(lines)


# -- one target ------------------------------------------------------------------------------


class SubscriberRun:
    """One target: its server, its clients, the receiver and the figures so far."""

    def __init__(
        self, target: Target, server: Server, port: int, receiver: Receiver, plan: Plan
    ) -> None:
        self.target = target
        self.server = server
        self.port = port
        self.receiver = receiver
        self.plan = plan
        self.client = sns_client(port)
        self.n = plan.subscriptions
        self.m = plan.messages_for(target)
        # moto posts a message to the first 100 subscriptions of its topic only
        self.per_message = min(self.n, MOTO_PUBLISH_LIMIT) if target.kind == "moto" else self.n
        self.row = Row(target.label, self.n, self.m, self.per_message)

    @property
    def confirms(self) -> bool:
        """pushgate sends a SubscriptionConfirmation; moto confirms HTTP subscriptions
        itself, at once."""
        return self.target.kind == "pushgate"

    def warm_up(self) -> None:
        """One subscriber on a topic of its own, confirmed and sent one message: the
        server's HTTP client and the receiver's JIT are warm before the clock runs."""
        self.receiver.reset()
        topic = self.client.create_topic(Name=f"warm-up-{uuid.uuid4().hex[:6]}")["TopicArn"]
        self.client.subscribe(TopicArn=topic, Protocol="http", Endpoint=self.receiver.url(-1))
        if self.confirms:
            self._wait_confirmed(1, 30.0)
        self.client.publish(TopicArn=topic, Message="warm-up")
        progress = wait_for_count(self.receiver, 1, timeout=30, stall=30)
        if progress.problem:
            raise RuntimeError(f"warm-up not delivered: {progress.problem}; {self._trouble()}")

    def _trouble(self) -> str:
        lines = server_trouble(self.server.log_path)
        return " ".join(lines) or "no warnings in the server log"

    def _wait_confirmed(self, expected: int, timeout: float) -> dict[str, Any]:
        """Poll the receiver until it has confirmed ``expected`` subscriptions."""
        deadline, counts = time.monotonic() + timeout, self.receiver.counts()
        while counts["confirmed"] < expected:
            if counts["confirmFailed"] or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{counts['confirmed']:,} of {expected:,} subscriptions confirmed "
                    f"({counts['confirmFailed']:,} given up; first error "
                    f"{counts['firstError'] or '-'}; posts {counts['posts']}); {self._trouble()}"
                )
            time.sleep(0.05)
            counts = self.receiver.counts()
        return counts

    def subscribe(self) -> str:
        """N subscriptions over ``subscribe_threads`` boto3 clients; returns the topic."""
        plan, row = self.plan, self.row
        topic = str(self.client.create_topic(Name=f"bench-{uuid.uuid4().hex[:6]}")["TopicArn"])
        threads = plan.subscribe_threads
        clients = [sns_client(self.port) for _ in range(threads)]  # made here: not thread-safe

        def work(k: int) -> None:
            for i in range(k, self.n, threads):
                clients[k].subscribe(TopicArn=topic, Protocol="http", Endpoint=self.receiver.url(i))

        self.receiver.reset()
        row.busy_before.append(wait_for_quiet(*plan.quiet))
        log(f"{self.target.name}: subscribing {self.n:,} URLs over {threads} clients")
        start = time.time()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(threads)))
        subscribed = time.time()
        row.subscribe_rate = self.n / (subscribed - start)
        if self.confirms:
            counts = self._wait_confirmed(self.n, plan.timeout)
            last = counts["confirmLast"] / 1000
            row.confirm_rate = self.n / (last - start)
            row.confirm_lag_ms = (last - subscribed) * 1000
            posts = counts["posts"].get(CONFIRMATION, 0)
            if posts != self.n:
                row.fail(f"{posts:,} SubscriptionConfirmations for {self.n:,} subscriptions")
        listed = self._listed(topic)
        if listed != Counter({"confirmed": self.n}):
            row.fail(f"ListSubscriptionsByTopic after confirming: {dict(listed)}")
        log(
            f"{self.target.name}: {row.subscribe_rate:,.0f} Subscribe/s, "
            f"{row.confirm_rate:,.0f} confirmed/s, listed {dict(listed)}"
        )
        return topic

    def _listed(self, topic: str) -> Counter[str]:
        paginator = self.client.get_paginator("list_subscriptions_by_topic")
        found: Counter[str] = Counter()
        for page in paginator.paginate(TopicArn=topic):
            for sub in page["Subscriptions"]:
                found["pending" if sub["SubscriptionArn"] == PENDING else "confirmed"] += 1
        return found

    def publish(self, topic: str) -> None:
        """M Publish calls in a row, then wait for the receiver to count N x M."""
        plan, row, total = self.plan, self.row, self.per_message * self.m
        recorded_before = self._recorded()
        self.receiver.reset()
        row.busy_before.append(wait_for_quiet(*plan.quiet))
        row.rss_idle_mb = rss_now(self.server.pid) / MB
        ids, retries = [], 0
        log(f"{self.target.name}: publishing {self.m} messages to {self.n:,} subscribers")
        with RssSampler(self.server.pid) as rss, CpuWatch(self.receiver, self.server) as cpu:
            start = time.time()
            for i in range(self.m):
                t0 = time.perf_counter()
                answer = self.client.publish(TopicArn=topic, Message=MESSAGE.format(i=i))
                row.publish_ms.append((time.perf_counter() - t0) * 1000)
                ids.append(answer["MessageId"])
                retries += answer["ResponseMetadata"].get("RetryAttempts", 0)
            row.publish_s = time.time() - start
            progress = wait_for_count(self.receiver, total, plan.timeout, stall=60)
        stats = progress.stats
        row.delivered = stats["count"]
        if stats["count"]:
            row.seconds = stats["last"] / 1000 - start
            row.first_ms = (stats["first"] / 1000 - start) * 1000
            row.rate = total / row.seconds if stats["count"] >= total else 0.0
        row.steady_rate = progress.steady_rate(total)
        row.timeline = timeline(progress, start)
        row.server_cpu_s = cpu.server
        row.cpu = cpu.percent()
        row.rss_peak_mb = rss.peak / MB
        row.rss_end_mb = rss_now(self.server.pid) / MB
        row.hwm_mb = hwm_now(self.server.pid) / MB
        if progress.problem:
            row.fail(f"INCOMPLETE: {progress.problem}")
        if self.target.kind == "moto" and self.m > 1:  # it posts inside Publish
            later = self.per_message * (self.m - 1) / (sum(row.publish_ms[1:]) / 1000)
            row.notes.append(
                f"the first Publish took {row.publish_ms[0]:,.0f} ms, the others "
                f"{percentile(row.publish_ms[1:], 50):,.0f} ms (p50): {later:,.0f} "
                "notifications/s after the first"
            )
        if retries:
            row.fail(f"boto3 retried Publish {retries} time(s): a message may have gone twice")
        self._check_delivered(ids, recorded_before)
        log(
            f"{self.target.name}: {row.rate:,.0f} notifications/s, Publish p50 "
            f"{percentile(row.publish_ms, 50):.1f} ms, RSS {row.rss_idle_mb:.0f} -> "
            f"{row.rss_peak_mb:.0f} MB, CPU {row.cpu}, notes {row.notes}"
        )

    def _recorded(self) -> Counter[str]:
        """pushgate's Notification post counters (moto has none)."""
        if self.target.kind != "pushgate":
            return Counter()
        posts = subscriber_posts(self.port)
        return Counter({k: v for k, v in posts.items() if k.startswith(NOTIFICATION)})

    def _check_delivered(self, ids: Sequence[str], before: Counter[str]) -> None:
        """Each message to each subscriber exactly once (anything sent twice arrives within
        the second waited), and pushgate recorded every post sent."""
        row, total = self.row, self.per_message * self.m
        time.sleep(1.0)
        counts = self.receiver.counts()
        posts = counts["posts"].get(NOTIFICATION, 0)
        if posts != total or counts["duplicates"]:
            row.fail(f"{posts:,} Notification POSTs, {counts['duplicates']:,} duplicates")
        if counts["perMessage"] != dict.fromkeys(ids, self.per_message):
            seen = Counter(counts["perMessage"].values())
            row.fail(f"subscribers per message id: {dict(seen)} for {len(ids)} ids")
        if counts["untyped"]:
            row.notes.append(
                f"{counts['untyped']:,} POSTs without an x-amz-sns-message-type header "
                "(counted by the body's Type)"
            )
        if self.target.kind == "pushgate":
            expected = Counter({f"{NOTIFICATION}/sent": total})
            deadline = time.monotonic() + 30
            while (recorded := self._recorded() - before) != expected:
                if time.monotonic() > deadline:
                    row.fail(f"pushgate's subscriber post counters: {dict(recorded)}")
                    break
                time.sleep(0.2)
        trouble = server_trouble(self.server.log_path)
        if not (len(trouble) == 2 and "This is a development server" in trouble[1]):
            row.notes += trouble  # werkzeug's warning at moto_server's start is no trouble

    def profile(self, topic: str) -> dict[str, Any]:
        """py-spy samples the server during one more round of M publishes (not in the
        table), until the receiver has counted them all."""
        raw = RESULTS_DIR / f"profile-subscribers-{self.target.name}.txt"
        wait_for_quiet(*self.plan.quiet)
        self.receiver.reset()
        log(f"{self.target.name}: profiling {self.m} more publishes with py-spy")
        with py_spy(self.server.pid, raw) as spy, CpuWatch(self.receiver, self.server) as cpu:
            spy_cpu0 = proc_cpu_seconds(spy.pid)
            start = time.time()
            for i in range(self.m):
                self.client.publish(TopicArn=topic, Message=MESSAGE.format(i=i))
            progress = wait_for_count(self.receiver, self.per_message * self.m, self.plan.timeout)
            wall = time.time() - start
            spy_cpu = (proc_cpu_seconds(spy.pid) - spy_cpu0) / wall * 100
        percent = cpu.percent()
        summary = summarise_profile(raw.read_text(), SPY_RATE, max(1, round(wall + 1.0)))
        summary |= {
            "target": self.target.label,
            "rate_under_profiler": progress.stats["count"] / wall,
            "server_cpu": percent["server"],
            "py_spy_cpu": spy_cpu,
            "other_cpu": max(0.0, percent["rest"] - spy_cpu),
            "raw": str(raw.relative_to(REPO)),
            "problem": progress.problem,
        }
        return summary


def run_target(
    target: Target, workdir: Path, plan: Plan, receiver: Receiver
) -> tuple[Row, dict[str, Any] | None]:
    with serving(target, workdir, plan) as (server, port):
        log(f"{target.name}: pid {server.pid} on port {port}")
        run = SubscriberRun(target, server, port, receiver, plan)
        run.warm_up()
        topic = run.subscribe()
        if run.row.ok:
            run.publish(topic)
        profile = None
        if plan.profile and target.kind == "pushgate" and run.row.ok:
            profile = run.profile(topic)
    return run.row, profile


# -- report ----------------------------------------------------------------------------------


def machine_info(source: str) -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "node": node,
        "moto": metadata.version("moto"),
        "commit": git_commit(),
        "source": source,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def comparisons(rows: Sequence[Row]) -> list[str]:
    moto = next((r for r in rows if r.target == "moto_server" and r.ok), None)
    out = []
    for r in rows:
        if r.target == "moto_server" or not r.ok:
            continue
        line = f"- {r.target}: {r.rate:,.0f} notifications delivered/s"
        if moto and moto.rate:
            line += f", x{r.rate / moto.rate:,.1f} moto_server's {moto.rate:,.0f}/s"
            p50, moto_p50 = percentile(r.publish_ms, 50), percentile(moto.publish_ms, 50)
            line += f"; Publish p50 {fmt_ms(p50)} ms against moto's {fmt_ms(moto_p50)} ms"
        out.append(line + f"; {r.confirm_rate:,.0f} subscriptions confirmed/s")
    return out


def report(
    info: dict[str, str],
    command: str,
    rows: Sequence[Row],
    failures: Sequence[str],
    profiles: Sequence[dict[str, Any]],
) -> str:
    parts = [
        f"Run {info['date']}: `nproc` = {info['nproc']} ({info['cpu']}), Python "
        f"{info['python']}, Node {info['node']}, moto {info['moto']}, pushgate "
        f"{info['source']} (commit {info['commit']}).",
        "",
        "```sh",
        command,
        "```",
        "",
        "Subscribe calls/s: N Subscribe over parallel boto3 clients. confirmed/s: N / (first "
        "Subscribe -> the receiver's last SubscribeURL GET answered 200); moto confirms at "
        "once and sends no confirmation. Publish: M calls one after the other, each timed "
        "(with M <= 100 calls, p99 is the slowest). delivered/s: N x M / (first Publish -> the "
        "receiver's last Notification); 10-90%: the rate between the receiver's 10% and 90% "
        "marks (polled every 50 ms). server CPU µs per notification: the server's CPU time "
        "over the publish phase / N x M. RSS of the server process: idle before the first "
        "Publish, peak of 100 ms samples, at the end. CPU in % of one core (the machine has "
        f"{info['nproc']}00%) over the publish phase: the server, PostgreSQL (the benchmark "
        "database's backends and the shared WAL writer, checkpointer...), the receiver "
        "(Node), the rest: this script (boto3) and other people's work.",
        "",
        table(rows),
        "",
        *comparisons(rows),
    ]
    notes = [f"- {r.target}: {n}" for r in rows for n in r.notes]
    for r in rows:
        timing = f"the {r.messages} Publish calls took {r.publish_s:.2f} s"
        if not math.isnan(r.confirm_lag_ms):
            timing = (
                f"{r.confirm_lag_ms:,.0f} ms from the last Subscribe answered to the last "
                f"confirmation; {timing}"
            )
        notes.append(f"- {r.target}: {timing}; VmHWM {r.hwm_mb:.0f} MB")
    if notes:
        parts += ["", "Notes:", "", *notes]
    busy = [f"{r.target} {' / '.join(f'{b:.0f}%' for b in r.busy_before)}" for r in rows]
    parts += [
        "",
        "Machine busy % (of one core) just before the subscribe / publish phases: "
        + "; ".join(busy)
        + ".",
    ]
    if failures:
        parts += ["", "Targets that failed:", "", *failures]
    for summary in profiles:
        text = profile_text(summary).replace(
            "under create-max", "during one more round of publishes (not in the table)", 1
        )
        parts += ["", text.replace(" req/s while sampled", " notifications/s while sampled", 1)]
        if summary.get("problem"):
            parts += ["", f"The profiled round did not finish cleanly: {summary['problem']}"]
    return "\n".join(parts)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="pushgate HTTP/S subscriber benchmark (README.md)")
    p.add_argument("--write-readme", action="store_true", help="rewrite bench/README.md figures")
    p.add_argument("--profile", action="store_true", help="py-spy the pushgate servers as well")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset")
    p.add_argument("--subscriptions", type=int, default=1000, help="N: HTTP subscriptions")
    p.add_argument("--messages", type=int, default=20, help="M: messages published (pushgate)")
    p.add_argument("--moto-messages", type=int, default=20, help="M for moto_server")
    p.add_argument("--subscribe-threads", type=int, default=4, help="parallel Subscribe clients")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per phase at most")
    p.add_argument("--ref", help="benchmark src/ at this git revision (e.g. HEAD), not the tree")
    p.add_argument(
        "--postgres-admin-url", default=ADMIN_URL, help="where the throw-away database is made"
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="PUSHGATE_NAME=VALUE",
        help="a pushgate setting to try (repeatable)",
    )
    p.add_argument("--quiet-wait", type=float, default=60.0, help="wait for an idle machine")
    p.add_argument("--quiet-threshold", type=float, default=15.0, help="idle: busy %% below")
    args = p.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.server_env if "=" in item)
    if len(settings) != len(args.server_env) or any(
        not name.startswith("PUSHGATE_") for name in settings
    ):
        p.error("--server-env takes PUSHGATE_NAME=VALUE, each name once")
    args.server_env = settings
    if not 1 <= args.subscriptions <= 100_000:
        p.error("--subscriptions must be 1..100000")
    if not (1 <= args.messages <= 1000 and 1 <= args.moto_messages <= 1000):
        p.error("--messages and --moto-messages must be 1..1000")
    if not 1 <= args.subscribe_threads <= 64:
        p.error("--subscribe-threads must be 1..64")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    targets = [make_target(n.strip()) for n in args.targets.split(",") if n.strip()]
    signal.signal(signal.SIGTERM, _interrupt)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python bench/subscribers.py", *given])
    rows: list[Row] = []
    profiles: list[dict[str, Any]] = []
    failures: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pushgate-subscribers-") as tmp:
        workdir = Path(tmp)
        source = None
        info = machine_info("from the installed work tree")
        if args.ref:
            source, info["commit"] = export_source(args.ref, workdir)
            info["source"] = f"from git revision {args.ref}"
            log(f"pushgate from {args.ref} = {info['commit']}, unpacked in {source}")
        plan = Plan(
            subscriptions=args.subscriptions,
            messages=args.messages,
            moto_messages=args.moto_messages,
            subscribe_threads=args.subscribe_threads,
            admin_url=args.postgres_admin_url,
            source=source,
            timeout=args.timeout,
            quiet=(args.quiet_wait, args.quiet_threshold),
            profile=args.profile,
            server_env=args.server_env,
        )
        receiver = Receiver(workdir)
        try:
            receiver.start()
            log(f"receiver pid {receiver.pid} on port {receiver.port}")
            for target in targets:
                try:
                    row, profile = run_target(target, workdir, plan, receiver)
                except Exception as exc:  # one target failing should not lose the others
                    log(f"{target.name} FAILED: {exc!r}")
                    failures.append(f"- {target.label}: FAILED, {one_line(repr(exc), 400)}")
                    continue
                rows.append(row)
                if profile:
                    profiles.append(profile)
        finally:
            receiver.stop()
            _keep_log_tail(workdir / "receiver.log")
    log(f"all targets done in {time.monotonic() - started:.0f} s")
    text = report(info, command, rows, failures, profiles)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    dump: dict[str, Any] = {"machine": info, "command": command, "plan": asdict(plan)}
    dump |= {"rows": [asdict(r) for r in rows], "profiles": profiles, "failures": failures}
    (RESULTS_DIR / "subscribers.json").write_text(json.dumps(dump, indent=2, default=str))
    if args.write_readme:
        heading = f"{SECTION_TITLE}\n\n### Figures\n\n"
        replace_readme_block(SUBSCRIBERS_START, SUBSCRIBERS_END, text, heading)
        log(f"figures written to {README.relative_to(REPO)}")
    bad = [r for r in rows if not r.ok]
    for r in bad:
        log(f"FAILED: {r.target}: {r.notes}")
    return 1 if bad or failures else 0


if __name__ == "__main__":
    sys.exit(main())
