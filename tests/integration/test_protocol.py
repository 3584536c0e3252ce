"""The Query protocol on the wire: raw HTTP (httpx, signed with botocore's SigV4Auth), XML
envelopes, auth errors and retries, captured request bodies, session tokens, regions.

specs/sns-api.md sec. 2 and 3.
"""

from __future__ import annotations

import json
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import ACCESS_KEY_ID, ACCOUNT, REGION, SECRET_ACCESS_KEY, Server, unique

NS = "{http://sns.amazonaws.com/doc/2010-03-31/}"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
SESSION_TOKEN = "FwoGZXIvYXdzEBYaDHqa0AP1/SESSION+TOKEN=="
ISO = r"\d{8}T\d{6}Z"
SIGNATURE_DOES_NOT_MATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


# -- helpers -----------------------------------------------------------------------------------


def signed_headers(
    server: Server,
    body: bytes,
    *,
    key: str = ACCESS_KEY_ID,
    secret: str = SECRET_ACCESS_KEY,
    token: str | None = None,
    region: str = REGION,
    when: datetime | None = None,
    method: str = "POST",
    query: str = "",
) -> dict[str, str]:
    """The headers botocore would send for ``body`` (signed at ``when``, default now)."""
    url = f"{server.url}/" + (f"?{query}" if query else "")
    headers = {"Content-Type": CONTENT_TYPE} if method == "POST" else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    signer = SigV4Auth(Credentials(key, secret, token), "sns", region)
    if when is None:
        signer.add_auth(request)
    else:
        naive = when.astimezone(UTC).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
            signer.add_auth(request)
    return dict(request.headers.items())


def post(server: Server, body: bytes | str, **sign: Any) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(f"{server.url}/", content=data, headers=signed_headers(server, data, **sign))


def parse_error(response: httpx.Response) -> tuple[int, dict[str, str]]:
    """Sec. 2.4's envelope, checked element by element; returns (status, Error as a dict)."""
    assert response.headers["content-type"] == "text/xml"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.content)
    assert root.tag == f"{NS}ErrorResponse"
    assert [child.tag for child in root] == [f"{NS}Error", f"{NS}RequestId"]
    error = root.find(f"{NS}Error")
    assert error is not None
    assert [child.tag for child in error] == [f"{NS}Type", f"{NS}Code", f"{NS}Message"]
    request_id = root.findtext(f"{NS}RequestId")
    assert request_id == response.headers["x-amzn-RequestId"]
    assert uuid.UUID(request_id)
    return response.status_code, {c.tag.removeprefix(NS): c.text or "" for c in error}


def parse_success(response: httpx.Response, action: str) -> ET.Element | None:
    """Sec. 2.3's envelope; returns the ``{action}Result`` element (None when absent)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/xml"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.content)
    assert root.tag == f"{NS}{action}Response"
    tags = [child.tag for child in root]
    assert tags[-1] == f"{NS}ResponseMetadata"
    assert tags[:-1] in ([], [f"{NS}{action}Result"])
    request_id = root.findtext(f"{NS}ResponseMetadata/{NS}RequestId")
    assert request_id == response.headers["x-amzn-RequestId"]
    assert uuid.UUID(request_id or "")
    return root.find(f"{NS}{action}Result")


def sender(code: str, message: str, status: int = 400) -> tuple[int, dict[str, str]]:
    return status, {"Type": "Sender", "Code": code, "Message": message}


def requests_logged(server: Server) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in server.log().splitlines() if line.startswith("{"))
    return [entry for entry in lines if entry.get("action") == "http_request"]


def count_requests(server: Server, call: Callable[[], object]) -> list[dict[str, Any]]:
    """The access-log entries of the requests that ``call`` made, in order.

    A marker request follows the call; once its line is in the log, so are the call's.
    """
    before = len(requests_logged(server))
    call()
    marker = unique("marker")
    server.client().create_topic(Name=marker)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = requests_logged(server)[before:]
        if entries and entries[-1]["sns_action"] == "CreateTopic":
            return entries[:-1]
        time.sleep(0.05)
    raise AssertionError("the marker request never reached the access log")


# -- authentication errors ---------------------------------------------------------------------


def test_no_authorization(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/",
        content=b"Action=ListTopics&Version=2010-03-31",
        headers={"Content-Type": CONTENT_TYPE},
    )
    assert parse_error(response) == sender(
        "MissingAuthenticationToken", "Request is missing Authentication Token", 403
    )


def test_bad_signature(server: Server) -> None:
    body = b"Action=ListTopics&Version=2010-03-31"
    headers = signed_headers(server, body)
    tampered = httpx.post(f"{server.url}/", content=body + b"&x=1", headers=headers)
    expected = sender("SignatureDoesNotMatch", SIGNATURE_DOES_NOT_MATCH, 403)
    assert parse_error(tampered) == expected
    assert parse_error(post(server, body, secret="not-the-secret")) == expected
    headers["Authorization"] = re.sub(
        r"Signature=\w+", "Signature=" + "0" * 64, headers["Authorization"]
    )
    assert parse_error(httpx.post(f"{server.url}/", content=body, headers=headers)) == expected


def test_unknown_access_key(server: Server) -> None:
    response = post(server, "Action=ListTopics&Version=2010-03-31", key="AKIAUNKNOWN000000000")
    assert parse_error(response) == sender(
        "InvalidClientTokenId", "The security token included in the request is invalid.", 403
    )


def test_malformed_authorization(server: Server) -> None:
    body = b"Action=ListTopics&Version=2010-03-31"
    headers = signed_headers(server, body)
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=abc"
    response = httpx.post(f"{server.url}/", content=body, headers=headers)
    assert parse_error(response) == sender(
        "IncompleteSignature",
        "Authorization header requires 'Signature' parameter. Authorization header requires "
        "'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=abc",
    )
    headers["Authorization"] = "AWS4-HMAC-SHA1 Credential=abc"
    response = httpx.post(f"{server.url}/", content=body, headers=headers)
    assert parse_error(response) == sender(
        "IncompleteSignature", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'."
    )


@pytest.mark.parametrize(
    ("shift", "pattern"),
    [
        (
            timedelta(minutes=-20),
            rf"Signature expired: ({ISO}) is now earlier than {ISO} \({ISO} - 15 min\.\)",
        ),
        (
            timedelta(minutes=20),
            rf"Signature not yet current: ({ISO}) is still later than {ISO} \({ISO} \+ 15 min\.\)",
        ),
    ],
)
def test_request_expired(server: Server, shift: timedelta, pattern: str) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + shift
    response = post(server, "Action=ListTopics&Version=2010-03-31", when=when)
    status, error = parse_error(response)
    assert (status, error["Type"], error["Code"]) == (400, "Sender", "RequestExpired")
    match = re.fullmatch(pattern, error["Message"])
    assert match, error["Message"]
    assert match[1] == when.strftime("%Y%m%dT%H%M%SZ")


def test_request_within_the_skew_is_accepted(server: Server) -> None:
    when = datetime.now(UTC) - timedelta(minutes=10)
    response = post(server, "Action=ListTopics&Version=2010-03-31", when=when)
    assert parse_success(response, "ListTopics") is not None


# -- actions -----------------------------------------------------------------------------------


def test_missing_action(server: Server) -> None:
    for body in ("Version=2010-03-31", "Action=&Version=2010-03-31"):
        assert parse_error(post(server, body)) == sender(
            "MissingAction", "The request must contain the parameter Action."
        )


@pytest.mark.parametrize("action", ["Bogus", "listTopics", "CreateQueue", "AddPermission"])
def test_unknown_action(server: Server, action: str) -> None:
    response = post(server, f"Action={action}&Version=2010-03-31")
    assert parse_error(response) == sender(
        "InvalidAction", f"The action {action} is not valid for this web service."
    )


def test_missing_required_parameter(server: Server) -> None:
    response = post(server, "Action=GetTopicAttributes&Version=2010-03-31")
    assert parse_error(response) == sender(
        "ValidationError",
        "1 validation error detected: Value null at 'topicArn' failed to satisfy constraint: "
        "Member must not be null",
    )


# -- retries -----------------------------------------------------------------------------------


def retrying(server: Server, **kwargs: Any) -> Any:
    return server.client(config=Config(retries={"max_attempts": 3, "mode": "standard"}), **kwargs)


@pytest.mark.parametrize(
    ("client_kwargs", "call", "expected"),
    [
        (
            {"aws_secret_access_key": "wrong"},
            lambda c: c.list_topics(),
            ("ListTopics", 403, "SignatureDoesNotMatch"),
        ),
        (
            {"aws_access_key_id": "AKIAUNKNOWN000000000"},
            lambda c: c.list_topics(),
            ("ListTopics", 403, "InvalidClientTokenId"),
        ),
        (
            {},
            lambda c: c.get_topic_attributes(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:nope"),
            ("GetTopicAttributes", 404, "NotFound"),
        ),
        (
            {},
            lambda c: c.create_topic(Name="bad name"),
            ("CreateTopic", 400, "InvalidParameter"),
        ),
        (
            {},
            lambda c: c.tag_resource(ResourceArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:nope", Tags=[]),
            ("TagResource", 404, "ResourceNotFound"),
        ),
    ],
)
def test_errors_are_not_retried(
    server: Server,
    client_kwargs: dict[str, str],
    call: Callable[[Any], object],
    expected: tuple[str, int, str],
) -> None:
    client = retrying(server, **client_kwargs)
    raised: list[ClientError] = []

    def attempt() -> None:
        with pytest.raises(ClientError) as err:
            call(client)
        raised.append(err.value)

    entries = count_requests(server, attempt)
    action, status, code = expected
    assert [(e["sns_action"], e["status"]) for e in entries] == [(action, status)]
    response: Any = raised[0].response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def test_success_is_one_request(server: Server) -> None:
    client = retrying(server)
    entries = count_requests(server, lambda: client.list_topics())
    assert [(e["sns_action"], e["status"]) for e in entries] == [("ListTopics", 200)]
    # The counting itself sees every request.
    entries = count_requests(server, lambda: (client.list_topics(), client.list_topics()))
    assert [(e["sns_action"], e["status"]) for e in entries] == [("ListTopics", 200)] * 2


# -- envelopes ---------------------------------------------------------------------------------


def test_success_envelope_with_result(server: Server) -> None:
    name = unique()
    result = parse_success(
        post(server, f"Action=CreateTopic&Version=2010-03-31&Name={name}"), "CreateTopic"
    )
    assert result is not None
    assert [c.tag for c in result] == [f"{NS}TopicArn"]
    assert result.findtext(f"{NS}TopicArn") == f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"


def test_success_envelope_without_output(server: Server) -> None:
    arn = server.client().create_topic(Name=unique())["TopicArn"]
    for body in (
        f"Action=SetTopicAttributes&Version=2010-03-31&TopicArn={arn}"
        "&AttributeName=DisplayName&AttributeValue=x",
        f"Action=DeleteTopic&Version=2010-03-31&TopicArn={arn}",
    ):
        action = body.split("&")[0].removeprefix("Action=")
        assert parse_success(post(server, body), action) is None


@pytest.mark.parametrize("action", ["TagResource", "UntagResource"])
def test_empty_result_of_tagging(server: Server, action: str) -> None:
    arn = server.client().create_topic(Name=unique())["TopicArn"]
    body = f"Action={action}&Version=2010-03-31&ResourceArn={arn}" + (
        "&Tags.member.1.Key=a&Tags.member.1.Value=1" if action == "TagResource" else "&TagKeys="
    )
    response = post(server, body)
    result = parse_success(response, action)
    assert result is not None
    assert (list(result), result.text) == ([], None)
    assert f"<{action}Result/>".encode() in response.content


def test_empty_lists_and_no_next_token(server: Server) -> None:
    # A region nobody used: no topics, no subscriptions.
    for action, element in (("ListTopics", "Topics"), ("ListSubscriptions", "Subscriptions")):
        response = post(server, f"Action={action}&Version=2010-03-31", region="ap-south-2")
        result = parse_success(response, action)
        assert result is not None
        assert [c.tag for c in result] == [f"{NS}{element}"]
        assert f"<{element}/>".encode() in response.content
        assert b"NextToken" not in response.content


def test_text_is_escaped(server: Server) -> None:
    sns = server.client()
    arn = sns.create_topic(Name=unique())["TopicArn"]
    shown = '<b>&amp; "ü" \' ]]>'
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue=shown)
    result = parse_success(
        post(server, f"Action=GetTopicAttributes&Version=2010-03-31&TopicArn={arn}"),
        "GetTopicAttributes",
    )
    assert result is not None
    entries = {
        e.findtext(f"{NS}key"): e.findtext(f"{NS}value")
        for e in result.iterfind(f"{NS}Attributes/{NS}entry")
    }
    assert entries["DisplayName"] == shown
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == shown


@pytest.mark.parametrize(
    ("stored", "returned"),
    [
        ("line\r\nbreaks\rand\ttabs", "line\r\nbreaks\rand\ttabs"),
        ("ctrl\x01\x1f\x7f", "ctrl\ufffd\ufffd\x7f"),  # no XML can carry \x01 or \x1f
        ("nonchar\uffff\U0001f600", "nonchar\ufffd\U0001f600"),
    ],
)
def test_replies_stay_well_formed(server: Server, stored: str, returned: str) -> None:
    sns = server.client()
    arn = sns.create_topic(Name=unique())["TopicArn"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue=stored)
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": stored}])
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == returned
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": returned}]
    with pytest.raises(ClientError) as err:
        sns.subscribe(TopicArn=arn, Protocol=stored, Endpoint="x")
    response: Any = err.value.response
    assert response["Error"]["Message"] == (
        f"Invalid parameter: Amazon SNS does not support this protocol string: {returned}"
    )


def test_request_id_reaches_boto3(server: Server) -> None:
    sns = server.client()
    meta = sns.list_topics()["ResponseMetadata"]
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    with pytest.raises(ClientError) as err:
        sns.get_topic_attributes(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:{unique()}")
    response: Any = err.value.response
    meta = response["ResponseMetadata"]
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    assert uuid.UUID(meta["RequestId"])


def test_get_with_a_query_string(server: Server) -> None:
    name = unique()
    query = f"Action=CreateTopic&Version=2010-03-31&Name={name}"
    headers = signed_headers(server, b"", method="GET", query=query)
    response = httpx.get(f"{server.url}/?{query}", headers=headers)
    result = parse_success(response, "CreateTopic")
    assert result is not None
    assert result.findtext(f"{NS}TopicArn") == f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"


# -- captured request bodies (sec. 2.2), re-signed ---------------------------------------------

CAPTURED_ENDPOINT_ID = "5e3e9847-3183-3f18-a7e8-671c3a57d4b3"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:my-topic"
APP = f"arn:aws:sns:{REGION}:{ACCOUNT}:app/GCM/my-app"
CREATE_TOPIC = (
    "Action=CreateTopic&Version=2010-03-31&Name=my-topic&Attributes.entry.1.key=DisplayName"
    "&Attributes.entry.1.value=x&Tags.member.1.Key=k1&Tags.member.1.Value=v1"
)
CREATE_APPLICATION = (
    "Action=CreatePlatformApplication&Version=2010-03-31&Name=my-app&Platform=GCM"
    "&Attributes.entry.1.key=PlatformCredential&Attributes.entry.1.value=AIzaSyExampleKey"
    "&Attributes.entry.2.key=EventEndpointCreated"
    "&Attributes.entry.2.value=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic"
)
CREATE_ENDPOINT = (
    "Action=CreatePlatformEndpoint&Version=2010-03-31"
    "&PlatformApplicationArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aapp%2FGCM%2Fmy-app"
    "&Token=fcm-token-123&CustomUserData=user%3D42%26x%3D%C3%BC&Attributes.entry.1.key=Enabled"
    "&Attributes.entry.1.value=true&Attributes.entry.2.key=CustomUserData"
    "&Attributes.entry.2.value=other"
)
CLI_CREATE_ENDPOINT = (
    "Action=CreatePlatformEndpoint&Version=2010-03-31"
    "&PlatformApplicationArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aapp%2FGCM%2Fmy-app"
    "&Token=abcdef0123&CustomUserData=u%3D1&Attributes.entry.1.key=Enabled"
    "&Attributes.entry.1.value=true"
)
ENDPOINT_PARAM = (
    "arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aendpoint%2FGCM%2Fmy-app%2F" + CAPTURED_ENDPOINT_ID
)
SET_ENDPOINT_ATTRIBUTES = (
    f"Action=SetEndpointAttributes&Version=2010-03-31&EndpointArn={ENDPOINT_PARAM}"
    "&Attributes.entry.1.key=Enabled&Attributes.entry.1.value=false"
    "&Attributes.entry.2.key=Token&Attributes.entry.2.value=new-token"
)
SUBSCRIBE = (
    "Action=Subscribe&Version=2010-03-31"
    "&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic&Protocol=application"
    f"&Endpoint={ENDPOINT_PARAM}&Attributes.entry.1.key=RawMessageDelivery"
    "&Attributes.entry.1.value=false&ReturnSubscriptionArn=true"
)
LIST_ENDPOINTS = (
    "Action=ListEndpointsByPlatformApplication&Version=2010-03-31"
    "&PlatformApplicationArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aapp%2FGCM%2Fmy-app"
    "&NextToken=tok"
)
LIST_APPLICATIONS = "Action=ListPlatformApplications&Version=2010-03-31"
SET_TOPIC_ATTRIBUTES = (
    "Action=SetTopicAttributes&Version=2010-03-31"
    "&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic"
    "&AttributeName=DisplayName&AttributeValue=New"
)
TAG_RESOURCE = (
    "Action=TagResource&Version=2010-03-31"
    "&ResourceArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic"
    "&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Key=b&Tags.member.2.Value="
)
UNTAG_RESOURCE = (
    "Action=UntagResource&Version=2010-03-31"
    "&ResourceArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic"
    "&TagKeys.member.1=a&TagKeys.member.2=b"
)
PUBLISH_ENDPOINT = (
    f"Action=Publish&Version=2010-03-31&TargetArn={ENDPOINT_PARAM}&MessageStructure=json"
    "&Message=%7B%22default%22%3A+%22hi%22%2C+%22GCM%22%3A+%22%7B%5C%22notification%5C%22%3A+"
    "%7B%5C%22title%5C%22%3A+%5C%22T%5C%22%2C+%5C%22body%5C%22%3A+%5C%22B%5C%22%7D%7D%22%7D"
    "&MessageAttributes.entry.1.Name=AWS.SNS.MOBILE.FCM.TTL"
    "&MessageAttributes.entry.1.Value.DataType=String"
    "&MessageAttributes.entry.1.Value.StringValue=3600"
    "&MessageAttributes.entry.2.Name=bin&MessageAttributes.entry.2.Value.DataType=Binary"
    "&MessageAttributes.entry.2.Value.BinaryValue=AAFoaQ%3D%3D"
    "&MessageAttributes.entry.3.Name=num&MessageAttributes.entry.3.Value.DataType=Number"
    "&MessageAttributes.entry.3.Value.StringValue=12.5"
    "&MessageAttributes.entry.4.Name=arr&MessageAttributes.entry.4.Value.DataType=String.Array"
    "&MessageAttributes.entry.4.Value.StringValue=%5B%22a%22%2C%22b%22%5D"
)
PUBLISH_TOPIC = (
    "Action=Publish&Version=2010-03-31"
    "&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic&Message=plain&Subject=subj"
)
PUBLISH_BATCH = (
    "Action=PublishBatch&Version=2010-03-31"
    "&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic"
    "&PublishBatchRequestEntries.member.1.Id=m1&PublishBatchRequestEntries.member.1.Message=hello"
    "&PublishBatchRequestEntries.member.1.Subject=s1"
    "&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=k"
    "&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType=String"
    "&PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue=v"
    "&PublishBatchRequestEntries.member.2.Id=m2"
    "&PublishBatchRequestEntries.member.2.Message=%7B%22default%22%3A%22x%22%7D"
    "&PublishBatchRequestEntries.member.2.MessageStructure=json"
)


def on_endpoint(body: str, endpoint_arn: str) -> str:
    """A captured body aimed at one of our endpoints (ids are ours to choose, not the capture's)."""
    endpoint_id = endpoint_arn.rsplit("/", 1)[1]
    assert len(endpoint_id) == len(CAPTURED_ENDPOINT_ID)
    return body.replace(CAPTURED_ENDPOINT_ID, endpoint_id)


@pytest.fixture(scope="module")
def captured(server: Server) -> dict[str, str]:
    """The topic, application and endpoints of the capture, created from its own bodies."""
    arns: dict[str, str] = {}
    for key, body, action, element in (
        ("topic", CREATE_TOPIC, "CreateTopic", "TopicArn"),
        ("app", CREATE_APPLICATION, "CreatePlatformApplication", "PlatformApplicationArn"),
        ("endpoint", CREATE_ENDPOINT, "CreatePlatformEndpoint", "EndpointArn"),
        ("cli_endpoint", CLI_CREATE_ENDPOINT, "CreatePlatformEndpoint", "EndpointArn"),
    ):
        result = parse_success(post(server, body), action)
        assert result is not None
        arns[key] = result.findtext(f"{NS}{element}") or ""
    return arns


def test_captured_creations(server: Server, captured: dict[str, str]) -> None:
    sns = server.client()
    assert (captured["topic"], captured["app"]) == (TOPIC, APP)
    assert sns.get_topic_attributes(TopicArn=TOPIC)["Attributes"]["DisplayName"] == "x"
    assert sns.list_tags_for_resource(ResourceArn=TOPIC)["Tags"] == [{"Key": "k1", "Value": "v1"}]
    assert sns.get_platform_application_attributes(PlatformApplicationArn=APP)["Attributes"] == {
        "AuthenticationMethod": "Key",
        "Enabled": "true",
        "EventEndpointCreated": TOPIC,
    }
    for key in ("endpoint", "cli_endpoint"):
        assert re.fullmatch(
            rf"arn:aws:sns:{REGION}:{ACCOUNT}:endpoint/GCM/my-app/[0-9a-f-]{{36}}", captured[key]
        )
    # The Attributes' CustomUserData wins over the parameter (sec. 4.6).
    assert sns.get_endpoint_attributes(EndpointArn=captured["endpoint"])["Attributes"] == {
        "Enabled": "true",
        "Token": "fcm-token-123",
        "CustomUserData": "other",
    }
    assert sns.get_endpoint_attributes(EndpointArn=captured["cli_endpoint"])["Attributes"] == {
        "Enabled": "true",
        "Token": "abcdef0123",
        "CustomUserData": "u=1",
    }


def test_captured_lists(server: Server, captured: dict[str, str]) -> None:
    result = parse_success(post(server, LIST_APPLICATIONS), "ListPlatformApplications")
    assert result is not None
    listed = [m.findtext(f"{NS}PlatformApplicationArn") for m in result.iter(f"{NS}member")]
    assert APP in listed
    # The capture's NextToken is not one of ours.
    assert parse_error(post(server, LIST_ENDPOINTS)) == sender(
        "InvalidParameter", "Invalid parameter: NextToken"
    )
    valid = LIST_ENDPOINTS.removesuffix("&NextToken=tok")
    result = parse_success(post(server, valid), "ListEndpointsByPlatformApplication")
    assert result is not None
    endpoints = {
        m.findtext(f"{NS}EndpointArn") for m in result.iterfind(f"{NS}Endpoints/{NS}member")
    }
    assert endpoints == {captured["endpoint"], captured["cli_endpoint"]}


def test_captured_topic_changes(server: Server, captured: dict[str, str]) -> None:
    sns = server.client()
    assert parse_success(post(server, SET_TOPIC_ATTRIBUTES), "SetTopicAttributes") is None
    assert sns.get_topic_attributes(TopicArn=TOPIC)["Attributes"]["DisplayName"] == "New"
    assert parse_success(post(server, TAG_RESOURCE), "TagResource") is not None
    tags = sns.list_tags_for_resource(ResourceArn=TOPIC)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"k1": "v1", "a": "1", "b": ""}
    assert parse_success(post(server, UNTAG_RESOURCE), "UntagResource") is not None
    assert sns.list_tags_for_resource(ResourceArn=TOPIC)["Tags"] == [{"Key": "k1", "Value": "v1"}]


def test_captured_subscribe(server: Server, captured: dict[str, str]) -> None:
    result = parse_success(post(server, on_endpoint(SUBSCRIBE, captured["endpoint"])), "Subscribe")
    assert result is not None
    arn = result.findtext(f"{NS}SubscriptionArn") or ""
    assert arn.startswith(TOPIC + ":")
    attributes = server.client().get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert (attributes["Endpoint"], attributes["RawMessageDelivery"]) == (
        captured["endpoint"],
        "false",
    )
    # The same bytes again: the same subscription.
    again = parse_success(post(server, on_endpoint(SUBSCRIBE, captured["endpoint"])), "Subscribe")
    assert again is not None
    assert again.findtext(f"{NS}SubscriptionArn") == arn


@pytest.mark.parametrize(
    ("body", "action"),
    [(PUBLISH_ENDPOINT, "Publish"), (PUBLISH_TOPIC, "Publish"), (PUBLISH_BATCH, "PublishBatch")],
)
def test_captured_publish(server: Server, captured: dict[str, str], body: str, action: str) -> None:
    result = parse_success(post(server, on_endpoint(body, captured["cli_endpoint"])), action)
    assert result is not None


def test_captured_set_endpoint_attributes(server: Server, captured: dict[str, str]) -> None:
    body = on_endpoint(SET_ENDPOINT_ATTRIBUTES, captured["endpoint"])
    assert parse_success(post(server, body), "SetEndpointAttributes") is None
    attributes = server.client().get_endpoint_attributes(EndpointArn=captured["endpoint"])
    assert attributes["Attributes"] == {
        "Enabled": "false",
        "Token": "new-token",
        "CustomUserData": "other",
    }


# -- session tokens ----------------------------------------------------------------------------


def test_session_token_is_accepted_when_signed(server: Server) -> None:
    name = unique()
    headers = signed_headers(
        server, f"Action=CreateTopic&Version=2010-03-31&Name={name}".encode(), token=SESSION_TOKEN
    )
    assert headers["X-Amz-Security-Token"] == SESSION_TOKEN
    assert "x-amz-security-token" in headers["Authorization"]
    response = httpx.post(
        f"{server.url}/",
        content=f"Action=CreateTopic&Version=2010-03-31&Name={name}".encode(),
        headers=headers,
    )
    assert parse_success(response, "CreateTopic") is not None
    sns = server.client(aws_session_token=SESSION_TOKEN)
    assert any(t["TopicArn"].endswith(":" + name) for t in all_topics(sns))


def test_unsigned_session_token_is_refused(server: Server) -> None:
    body = b"Action=ListTopics&Version=2010-03-31"
    headers = signed_headers(server, body)
    headers["X-Amz-Security-Token"] = SESSION_TOKEN
    response = httpx.post(f"{server.url}/", content=body, headers=headers)
    assert parse_error(response) == sender(
        "SignatureDoesNotMatch",
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
        403,
    )


# -- regions -----------------------------------------------------------------------------------


def all_topics(sns: Any) -> list[dict[str, str]]:
    return [t for page in sns.get_paginator("list_topics").paginate() for t in page["Topics"]]


def test_the_signing_region_scopes_everything(server: Server) -> None:
    us = server.client()
    eu = server.client(region_name="eu-west-1")
    name = unique()
    us_arn = us.create_topic(Name=name)["TopicArn"]
    eu_arn = eu.create_topic(Name=name)["TopicArn"]
    assert us_arn == f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"
    assert eu_arn == f"arn:aws:sns:eu-west-1:{ACCOUNT}:{name}"

    eu_topics = {t["TopicArn"] for t in all_topics(eu)}
    assert eu_arn in eu_topics
    assert all(":eu-west-1:" in arn for arn in eu_topics)
    us_topics = {t["TopicArn"] for t in all_topics(us)}
    assert us_arn in us_topics
    assert eu_arn not in us_topics

    app = eu.create_platform_application(
        Name=unique("app"), Platform="GCM", Attributes={"PlatformCredential": "AIzaSyExample"}
    )["PlatformApplicationArn"]
    assert app.startswith(f"arn:aws:sns:eu-west-1:{ACCOUNT}:app/GCM/")
    endpoint = eu.create_platform_endpoint(PlatformApplicationArn=app, Token=unique("tok"))[
        "EndpointArn"
    ]
    assert endpoint.startswith(f"arn:aws:sns:eu-west-1:{ACCOUNT}:endpoint/GCM/")
    sub = eu.subscribe(TopicArn=eu_arn, Protocol="application", Endpoint=endpoint)[
        "SubscriptionArn"
    ]
    assert sub.startswith(eu_arn + ":")
    eu_subscriptions = [
        s
        for page in eu.get_paginator("list_subscriptions").paginate()
        for s in page["Subscriptions"]
    ]
    assert [s["SubscriptionArn"] for s in eu_subscriptions] == [sub]
    us_subscriptions = [
        s
        for page in us.get_paginator("list_subscriptions").paginate()
        for s in page["Subscriptions"]
    ]
    assert sub not in {s["SubscriptionArn"] for s in us_subscriptions}

    # A topic of the other region is not there, not even for tagging.
    for client, arn in ((us, eu_arn), (eu, us_arn)):
        with pytest.raises(ClientError) as err:
            client.get_topic_attributes(TopicArn=arn)
        response: Any = err.value.response
        assert response["Error"] == {
            "Type": "Sender",
            "Code": "InvalidParameter",
            "Message": "Invalid parameter: TopicArn",
        }
        for call in (
            lambda c, a: c.tag_resource(ResourceArn=a, Tags=[{"Key": "k", "Value": "v"}]),
            lambda c, a: c.untag_resource(ResourceArn=a, TagKeys=["k"]),
            lambda c, a: c.list_tags_for_resource(ResourceArn=a),
        ):
            with pytest.raises(ClientError) as err:
                call(client, arn)
            response = err.value.response
            assert response["Error"] == {
                "Type": "Sender",
                "Code": "ResourceNotFound",
                "Message": "Resource does not exist",
            }
    eu.tag_resource(ResourceArn=eu_arn, Tags=[{"Key": "k", "Value": "eu"}])
    assert eu.list_tags_for_resource(ResourceArn=eu_arn)["Tags"] == [{"Key": "k", "Value": "eu"}]
    assert us.list_tags_for_resource(ResourceArn=us_arn)["Tags"] == []
