"""``/metrics``: a real server delivers to the fakes, then a scrape is parsed with
prometheus-client's own parser and its counters checked to the unit.

Each test uses applications of its own, and the series are per application, so the
values are exact even though the server is shared by the module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pushgate.fakes.runner import FakeProviders
from pushgate.metrics import endpoint_labels, reason_label
from tests.conftest import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Server, start_server, unique
from tests.integration.delivery_helpers import (
    FAST_ENGINE,
    apns_app,
    apns_token,
    endpoint,
    fcm_app,
    fcm_token,
    settled,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def server(delivering_server: Server) -> Server:
    return delivering_server


@pytest.fixture(autouse=True)
def _clean_fakes(fakes: FakeProviders) -> None:
    fakes.reset()


def scrape(server: Server) -> Samples:
    response = httpx.get(
        f"{server.url}/metrics", auth=(ACCESS_KEY_ID, SECRET_ACCESS_KEY), timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A series' value; 0 when the series does not exist (nothing counted yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def name_of(app_arn: str) -> str:
    return app_arn.rsplit("/", 1)[1]


def _publish(sns: Any, target: str, message: str = "hi") -> str:
    return str(sns.publish(TargetArn=target, Message=message)["MessageId"])


def test_scrapes_need_an_access_key(server: Server) -> None:
    anonymous = httpx.get(f"{server.url}/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="pushgate"'
    assert "pushgate_" not in anonymous.text
    wrong = httpx.get(f"{server.url}/metrics", auth=(ACCESS_KEY_ID, "not-the-secret"))
    assert wrong.status_code == 401
    assert httpx.get(f"{server.url}/metrics", auth=("AKIANOSUCHKEY", "x")).status_code == 401


def test_deliveries_failures_retries_and_latency_are_counted_per_application(
    server: Server, sns: Any, fakes: FakeProviders
) -> None:
    apns = apns_app(sns, fakes)
    fcm, _ = fcm_app(sns, fakes)
    ios, android = (
        {"application": name_of(apns), "platform": "APNS"},
        {
            "application": name_of(fcm),
            "platform": "GCM",
        },
    )

    # APNs: three delivered, one dead token, one answered 503 once and then delivered.
    for _ in range(3):
        settled(server, _publish(sns, endpoint(sns, apns, apns_token())))
    dead = apns_token()
    fakes.apns.set_token_state(dead, "unregistered", timestamp_ms=int(time.time() * 1000) + 1000)
    settled(server, _publish(sns, endpoint(sns, apns, dead)))
    fakes.apns.script(status=503, reason="ServiceUnavailable", times=1)
    (item,) = settled(server, _publish(sns, endpoint(sns, apns, apns_token())))["items"]
    assert (item["state"], item["attempts"]) == ("sent", 2)

    # FCM: two delivered, one unregistered, and one through a topic.
    for _ in range(2):
        settled(server, _publish(sns, endpoint(sns, fcm, fcm_token())))
    gone = fcm_token()
    fakes.fcm.set_token_state(gone, "unregistered")
    settled(server, _publish(sns, endpoint(sns, fcm, gone)))
    topic = sns.create_topic(Name=unique("metrics"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=endpoint(sns, fcm, fcm_token()))
    settled(server, sns.publish(TopicArn=topic, Message="to the topic")["MessageId"])

    samples = scrape(server)
    published = "pushgate_published_total"
    assert value(samples, published, target="endpoint", **ios) == 5
    assert value(samples, published, target="endpoint", **android) == 3
    assert value(samples, published, target="topic", application="", platform="") == 1

    assert value(samples, "pushgate_delivered_total", **ios) == 4
    assert value(samples, "pushgate_delivered_total", **android) == 3
    assert value(samples, "pushgate_failed_total", reason="Unregistered", **ios) == 1
    assert value(samples, "pushgate_failed_total", reason="UNREGISTERED", **android) == 1
    assert value(samples, "pushgate_retries_total", reason="ServiceUnavailable", **ios) == 1
    assert value(samples, "pushgate_retries_total", reason="ServiceUnavailable", **android) == 0
    failures = {
        labels: v for (name, labels), v in samples.items() if name == "pushgate_failed_total"
    }
    assert sum(v for labels, v in failures.items() if ("application", name_of(apns)) in labels) == 1

    # Every answered send is one observation: APNs 3 + 410 + 503 + 200; FCM 2 + 404 + 1.
    latency = "pushgate_provider_latency_seconds"
    assert value(samples, f"{latency}_count", **ios) == 6
    assert value(samples, f"{latency}_count", **android) == 4
    assert value(samples, f"{latency}_bucket", le="+Inf", **ios) == 6
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == f"{latency}_bucket" and ("application", name_of(apns)) in labels
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    assert 0 < value(samples, f"{latency}_sum", **ios) < 6 * 30

    # Everything settled: nothing is waiting.
    assert value(samples, "pushgate_queue_depth") == 0
    assert value(samples, "pushgate_queue_oldest_age_seconds") == 0


def test_an_api_process_reports_the_queue_it_cannot_send(
    fresh_database_url: str, fakes: FakeProviders, tmp_path: Path
) -> None:
    """Role api runs no engine: what it stores stays due, and its scrape says so."""
    env = fakes.env() | FAST_ENGINE | {"PUSHGATE_ROLE": "api"}
    api = start_server(fresh_database_url, tmp_path / "data", env)
    try:
        sns = api.client()
        target = endpoint(sns, apns_app(sns, fakes), apns_token())
        _publish(sns, target)
        _publish(sns, target)
        time.sleep(0.2)  # so that the oldest has waited a measurable while
        samples = scrape(api)
        assert value(samples, "pushgate_queue_depth") == 2
        assert value(samples, "pushgate_queue_oldest_age_seconds") > 0
        app = {"application": target.split("/")[2], "platform": "APNS"}
        assert value(samples, "pushgate_published_total", target="endpoint", **app) == 2
        assert value(samples, "pushgate_delivered_total", **app) == 0
    finally:
        api.stop()


def test_worker_processes_share_their_counters(
    fresh_database_url: str, fakes: FakeProviders, tmp_path: Path
) -> None:
    """With ``--workers 2`` any process may answer a scrape, and each shows the sum of
    both processes' counters (prometheus-client's multiprocess mode)."""
    env = fakes.env() | FAST_ENGINE | {"PUSHGATE_WORKERS": "2"}
    srv = start_server(fresh_database_url, tmp_path / "data", env)
    try:
        # Publishes from several connections, so that both processes take some.
        app = apns_app(srv.client(), fakes)
        message_ids = [
            _publish(srv.client(), endpoint(srv.client(), app, apns_token())) for _ in range(6)
        ]
        for message_id in message_ids:
            settled(srv, message_id)
        labels = {"application": name_of(app), "platform": "APNS"}
        for _ in range(8):
            samples = scrape(srv)
            assert value(samples, "pushgate_delivered_total", **labels) == 6
            assert value(samples, "pushgate_published_total", target="endpoint", **labels) == 6
            assert value(samples, "pushgate_provider_latency_seconds_count", **labels) == 6
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        pytest.param("Unregistered", "Unregistered", id="apns-reason"),
        pytest.param("QUOTA_EXCEEDED", "QUOTA_EXCEEDED", id="fcm-code"),
        pytest.param("LegacyServerKey: Google shut down ...", "LegacyServerKey", id="detail"),
        pytest.param("BadDeviceToken for every token", "Other", id="free-text"),
        pytest.param("Connection reset by peer", "Other", id="transport-text"),
        pytest.param("x" * 65, "Other", id="too-long"),
        pytest.param("", "Unknown", id="empty"),
    ],
)
def test_reasons_become_bounded_labels(reason: str, label: str) -> None:
    assert reason_label(reason) == label


def test_an_endpoint_arn_names_its_application_and_platform() -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS_SANDBOX/my-app/0a1b2c3d"
    assert endpoint_labels(arn) == ("my-app", "APNS_SANDBOX")
