"""Every control-plane action once, through boto3, on both stores."""

from __future__ import annotations

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, unique


def test_health_and_readiness(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}


def test_round_trip_of_every_resource(sns) -> None:
    topic_arn = sns.create_topic(Name=unique())["TopicArn"]
    app_arn = sns.create_platform_application(
        Name=unique(), Platform="GCM", Attributes={"PlatformCredential": "AIzaSyExample"}
    )["PlatformApplicationArn"]
    endpoint_arn = sns.create_platform_endpoint(PlatformApplicationArn=app_arn, Token="token-1")[
        "EndpointArn"
    ]
    sub_arn = sns.subscribe(TopicArn=topic_arn, Protocol="application", Endpoint=endpoint_arn)[
        "SubscriptionArn"
    ]
    assert sns.get_endpoint_attributes(EndpointArn=endpoint_arn)["Attributes"] == {
        "Enabled": "true",
        "Token": "token-1",
    }
    assert (
        sns.get_subscription_attributes(SubscriptionArn=sub_arn)["Attributes"]["TopicArn"]
        == topic_arn
    )
    sns.unsubscribe(SubscriptionArn=sub_arn)
    sns.delete_endpoint(EndpointArn=endpoint_arn)
    sns.delete_platform_application(PlatformApplicationArn=app_arn)
    sns.delete_topic(TopicArn=topic_arn)
    with pytest.raises(ClientError) as err:
        sns.get_topic_attributes(TopicArn=topic_arn)
    assert err.value.response["Error"] == {
        "Type": "Sender",
        "Code": "NotFound",
        "Message": "Topic does not exist",
    }
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
