"""The pruning policy without a database: durations, the policy's checks, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pushgate.domain.pruning import (
    SAMPLE_SIZE,
    PrunePolicy,
    PruneReport,
    format_duration,
    parse_duration,
)
from pushgate.store.pruning import DISABLED, STALE, PrunableEndpoint

APP = "arn:aws:sns:us-east-1:123456789012:app/GCM/a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30d", timedelta(days=30), id="days"),
        pytest.param("12h", timedelta(hours=12), id="hours"),
        pytest.param("90m", timedelta(minutes=90), id="minutes"),
        pytest.param("45s", timedelta(seconds=45), id="seconds"),
        pytest.param("2w", timedelta(weeks=2), id="weeks"),
        pytest.param("1d12h", timedelta(days=1, hours=12), id="combined"),
        pytest.param("1.5h", timedelta(minutes=90), id="fraction"),
        pytest.param(" 7D ", timedelta(days=7), id="case-and-space"),
        pytest.param("3600", timedelta(hours=1), id="plain-seconds"),
        pytest.param("0", None, id="zero-is-off"),
        pytest.param("0d", None, id="zero-days-is-off"),
        pytest.param("off", None, id="off"),
        pytest.param("never", None, id="never"),
        pytest.param("none", None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_duration(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (timedelta(hours=2), timedelta(hours=2)),
        (timedelta(0), None),
        (60, timedelta(minutes=1)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_parse_duration_of_values(
    value: timedelta | float | None, expected: timedelta | None
) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("text", ["30 days", "d30", "30x", "1d 2h", "1d-2h", "-1d", "-5", "P30D"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "off"),
        (timedelta(days=30), "30d"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(weeks=2), "14d"),
        (timedelta(minutes=90, seconds=5), "1h30m5s"),
    ],
)
def test_format_duration_round_trips(value: timedelta | None, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_the_default_policy_is_conservative() -> None:
    policy = PrunePolicy()
    assert policy.disabled_after == timedelta(days=30)
    assert policy.stale_after is None  # SNS keeps endpoints forever; opt in
    assert policy.message_retention == timedelta(days=14)
    assert policy.to_json() == {
        "disabledAfter": "30d",
        "staleAfter": "off",
        "messageRetention": "14d",
    }


@pytest.mark.parametrize("name", ["disabled_after", "stale_after", "message_retention"])
@pytest.mark.parametrize("value", [timedelta(0), timedelta(days=-1)])
def test_a_rule_must_be_positive_or_off(name: str, value: timedelta) -> None:
    with pytest.raises(ValueError, match=name):
        PrunePolicy(**{name: value})


def test_the_report_counts_per_application_and_keeps_a_sample() -> None:
    report = PruneReport(True, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), PrunePolicy())
    other = APP.replace("/a", "/b")
    for i in range(SAMPLE_SIZE + 2):
        report.count(PrunableEndpoint(i, f"{APP}/e{i}", APP, DISABLED if i % 2 else STALE))
    report.count(PrunableEndpoint(99, f"{other}/x", other, DISABLED))

    assert (report.disabled, report.stale, report.endpoints) == (4, 4, 8)
    assert report.to_json() == {
        "dryRun": True,
        "now": "2030-01-02T03:04:05+00:00",
        "policy": {"disabledAfter": "30d", "staleAfter": "off", "messageRetention": "14d"},
        "endpoints": {"disabled": 4, "stale": 4, "total": 8},
        "applications": {
            APP: {
                "disabled": 3,
                "stale": 4,
                "sample": [f"{APP}/e{i}" for i in range(SAMPLE_SIZE)],
            },
            other: {"disabled": 1, "stale": 0, "sample": [f"{other}/x"]},
        },
        "messages": 0,
        "deliveries": 0,
    }
