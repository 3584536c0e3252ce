"""Tests for :mod:`pushgate.api.sns.sigv4` (spec sns-api.md §3).

botocore's own signer is the independent implementation: requests are signed with
``botocore.auth.SigV4Auth`` (or a real boto3 client, intercepted before sending) and then fed to
``verify_request`` exactly as an ASGI server would see them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials
from urllib3.util import parse_url

from pushgate.api.sns.sigv4 import (
    SignedRequest,
    canonical_query_string,
    canonical_request,
    canonical_uri,
    compute_signature,
    signing_key,
    string_to_sign,
    verify_request,
)
from pushgate.domain.errors import (
    AuthError,
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
SECRETS = {AKID: SECRET, "AKIDTEMP": "temp-secret"}

# -- spec §3 captured vector -----------------------------------------------------------------

# The 283-byte CreatePlatformApplication body of spec §2.2 (Content-Length 283 in §2.1).
SPEC_BODY = (
    b"Action=CreatePlatformApplication&Version=2010-03-31&Name=my-app&Platform=GCM"
    b"&Attributes.entry.1.key=PlatformCredential&Attributes.entry.1.value=AIzaSyExampleKey"
    b"&Attributes.entry.2.key=EventEndpointCreated&Attributes.entry.2.value="
    b"arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Amy-topic"
)
SPEC_BODY_HASH = "6fdf8aa4aa1fee803fcbcfb7c1b8ea19dc3acbb4ef590ecdd186ba6fb59aab3f"
SPEC_CANONICAL = (
    "POST\n/\n\n"
    "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
    "host:127.0.0.1:8765\n"
    "x-amz-date:20261122T191241Z\n\n"
    "content-type;host;x-amz-date\n" + SPEC_BODY_HASH
)
SPEC_CR_HASH = "8706eb53457de8139d6c849042e5521f51a58e203a1a1e8dfd9dd5c6854ed57c"
SPEC_STS = (
    "AWS4-HMAC-SHA256\n20261122T191241Z\n20261122/us-east-1/sns/aws4_request\n" + SPEC_CR_HASH
)
SPEC_SIGNATURE = "6be8171445c1971a75596be01244983d00d312a7ae2c8f9dddc3cc19fd7ebe82"
SPEC_TIME = datetime(2026, 11, 22, 19, 12, 41, tzinfo=UTC)
SPEC_HEADERS = {
    "host": "127.0.0.1:8765",
    "accept-encoding": "identity",
    "content-type": FORM,
    "x-amz-date": "20261122T191241Z",
    "authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/20261122/us-east-1/sns/aws4_request, "
    f"SignedHeaders=content-type;host;x-amz-date, Signature={SPEC_SIGNATURE}",
    "amz-sdk-request": "attempt=1; max=2",
    "content-length": "283",
}


def verify_spec(headers: dict[str, str], now: datetime = SPEC_TIME, **kw: object) -> SignedRequest:
    args: dict[str, object] = {
        "method": "POST",
        "raw_path": "/",
        "query_string": "",
        "headers": headers,
        "body": SPEC_BODY,
        "lookup_secret": SECRETS.get,
        "now": now,
        **kw,
    }
    return verify_request(**args)  # type: ignore[arg-type]


def test_spec_body_is_the_captured_one() -> None:
    assert len(SPEC_BODY) == 283
    assert hashlib.sha256(SPEC_BODY).hexdigest() == SPEC_BODY_HASH


def test_spec_canonical_request() -> None:
    creq = canonical_request(
        method="POST",
        uri=canonical_uri("/"),
        query="",
        headers=SPEC_HEADERS,
        signed_headers="content-type;host;x-amz-date",
        payload_hash=SPEC_BODY_HASH,
    )
    assert creq == SPEC_CANONICAL
    assert hashlib.sha256(creq.encode()).hexdigest() == SPEC_CR_HASH


def test_spec_string_to_sign_and_signature() -> None:
    sts = string_to_sign("20261122T191241Z", "20261122/us-east-1/sns/aws4_request", SPEC_CR_HASH)
    assert sts == SPEC_STS
    key = signing_key(SECRET, "20261122", "us-east-1", "sns")
    assert compute_signature(key, sts) == SPEC_SIGNATURE


def test_spec_request_verifies() -> None:
    signed = verify_spec(SPEC_HEADERS, now=SPEC_TIME + timedelta(minutes=3))
    assert signed == SignedRequest(access_key_id=AKID, region="us-east-1", session_token=None)


def test_spec_expired_message_format() -> None:
    with pytest.raises(RequestExpired) as exc:
        verify_spec(SPEC_HEADERS, now=datetime(2026, 11, 22, 19, 42, 41, tzinfo=UTC))
    assert exc.value.message == (
        "Signature expired: 20261122T191241Z is now earlier than "
        "20261122T192741Z (20261122T194241Z - 15 min.)"
    )
    assert (exc.value.code, exc.value.status) == ("RequestExpired", 400)


def test_spec_not_yet_current_message_format() -> None:
    with pytest.raises(RequestExpired) as exc:
        verify_spec(SPEC_HEADERS, now=datetime(2026, 11, 22, 18, 42, 41, tzinfo=UTC))
    assert exc.value.message == (
        "Signature not yet current: 20261122T191241Z is still later "
        "than 20261122T185741Z (20261122T184241Z + 15 min.)"
    )


def test_signing_key_is_cached_and_bounded() -> None:
    signing_key.cache_clear()
    verify_spec(SPEC_HEADERS)
    verify_spec(SPEC_HEADERS)
    info = signing_key.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert info.maxsize is not None


def test_canonical_query_string_sorts_and_encodes() -> None:
    pairs = [("b", "2"), ("a", "x y"), ("a", "/~é"), ("c", "")]
    assert canonical_query_string(pairs) == "a=%2F~%C3%A9&a=x%20y&b=2&c="


# -- botocore as the independent signer ------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """A request as the ASGI layer hands it over."""

    method: str
    raw_path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    signed_at: datetime

    def verify(self, *, now: datetime | None = None, **kw: object) -> SignedRequest:
        args: dict[str, object] = {
            "method": self.method,
            "raw_path": self.raw_path,
            "query_string": self.query_string,
            "headers": self.headers,
            "body": self.body,
            "lookup_secret": SECRETS.get,
            "now": self.signed_at if now is None else now,
            **kw,
        }
        return verify_request(**args)  # type: ignore[arg-type]

    def with_header(self, name: str, value: str) -> Wire:
        return replace(self, headers={**self.headers, name: value})


def to_wire(prepared: AWSPreparedRequest) -> Wire:
    # urllib3 percent-encodes what http.client could not send (spaces, non-ASCII) on the wire.
    url = parse_url(prepared.url)
    headers = {
        k.lower(): v.decode("latin-1") if isinstance(v, bytes) else v
        for k, v in prepared.headers.items()
    }
    headers.setdefault("host", str(url.netloc))
    date = headers.get("x-amz-date")
    signed_at = (
        datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if date else datetime.now(UTC)
    )
    body = prepared.body or b""
    return Wire(
        prepared.method,
        url.path or "/",
        url.query or "",
        headers,
        body.encode() if isinstance(body, str) else body,
        signed_at,
    )


def sign(
    body: bytes = b"Action=ListTopics&Version=2010-03-31",
    *,
    url: str = "http://127.0.0.1:8765/",
    method: str = "POST",
    akid: str = AKID,
    secret: str = SECRET,
    token: str | None = None,
    region: str = "us-east-1",
    service: str = "sns",
    extra: dict[str, str] | None = None,
) -> Wire:
    request = AWSRequest(
        method=method, url=url, data=body, headers={"Content-Type": FORM, **(extra or {})}
    )
    SigV4Auth(Credentials(akid, secret, token), service, region).add_auth(request)
    return to_wire(request.prepare())


def test_botocore_request_verifies() -> None:
    assert sign().verify() == SignedRequest(AKID, "us-east-1", None)


def test_botocore_session_token() -> None:
    wire = sign(akid="AKIDTEMP", secret="temp-secret", token="FQoGZXIvYXdzE//token+/=")
    assert "x-amz-security-token" in wire.headers["authorization"]
    assert wire.verify() == SignedRequest("AKIDTEMP", "us-east-1", "FQoGZXIvYXdzE//token+/=")


def test_region_comes_from_scope() -> None:
    assert sign(region="eu-west-1").verify().region == "eu-west-1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/sns/",
        "http://127.0.0.1:8765/sns%20x/",  # pre-encoded: botocore signs "/sns%2520x/"
        "http://127.0.0.1:8765/my prefix/café/",  # literal: signed "/my%20prefix/caf%C3%A9/"
        "http://127.0.0.1:8765/a!b/./c/../d//",  # dot segments and "//" normalised
        "http://127.0.0.1:8765/x?b=2&a=%20x%2F~&a=0&Action=ListTopics",
    ],
)
def test_paths_and_query_strings(url: str) -> None:
    assert sign(url=url).verify().access_key_id == AKID


def test_unicode_body() -> None:
    body = "Action=Publish&Message=héllo ✓ 你好&Subject=ü".encode()
    assert sign(body).verify().access_key_id == AKID


def test_date_header_instead_of_x_amz_date() -> None:
    wire = sign(extra={"Date": "placeholder"})  # botocore then signs an RFC 7231 Date header
    assert "x-amz-date" not in wire.headers
    when = parsedate_to_datetime(wire.headers["date"]).replace(tzinfo=UTC)
    assert wire.verify(now=when).access_key_id == AKID


def test_x_amz_content_sha256_must_match_body() -> None:
    body = b"Action=ListTopics&Version=2010-03-31"
    good = sign(body, extra={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert good.verify().access_key_id == AKID
    unsigned = sign(body, extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(SignatureDoesNotMatch, match="x-amz-content-sha256"):
        unsigned.verify()


def test_real_boto3_client_with_path_prefix() -> None:
    class Sent(Exception):
        pass

    captured: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **_: object) -> None:
        captured.append(request)
        raise Sent

    client = boto3.client(
        "sns",
        endpoint_url="http://127.0.0.1:8765/sns/",
        region_name="ap-south-1",
        aws_access_key_id="AKIDTEMP",
        aws_secret_access_key="temp-secret",
        aws_session_token="tok",
    )
    client.meta.events.register("before-send.sns", before_send)
    with pytest.raises(Sent):
        client.create_platform_application(
            Name="my-app", Platform="GCM", Attributes={"PlatformCredential": "k€y"}
        )
    assert to_wire(captured[0]).verify() == SignedRequest("AKIDTEMP", "ap-south-1", "tok")


def test_presigned_url() -> None:
    client = boto3.client(
        "sns",
        endpoint_url="http://127.0.0.1:8765/sns/",
        region_name="us-east-1",
        aws_access_key_id="AKIDTEMP",
        aws_secret_access_key="temp-secret",
        aws_session_token="tok",
    )
    # botocore signs the model's method (POST) unless told otherwise.
    for method, extra in (("GET", {"HttpMethod": "GET"}), ("POST", {})):
        url = urlsplit(client.generate_presigned_url("list_topics", ExpiresIn=600, **extra))
        wire = Wire(method, url.path, url.query, {"host": url.netloc}, b"", datetime.now(UTC))
        assert wire.verify() == SignedRequest("AKIDTEMP", "us-east-1", "tok")
    with pytest.raises(RequestExpired):
        wire.verify(now=datetime.now(UTC) + timedelta(minutes=11))
    with pytest.raises(SignatureDoesNotMatch):
        replace(wire, query_string=wire.query_string.replace("ListTopics", "ListTopic")).verify()


def test_presigned_url_missing_parameters() -> None:
    wire = Wire(
        "GET",
        "/",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261122T191241Z",
        {"host": "h"},
        b"",
        SPEC_TIME,
    )
    with pytest.raises(IncompleteSignature) as exc:
        wire.verify()
    assert exc.value.message == (
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string "
        "parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must "
        "include 'X-Amz-Signature'. Re-examine the query-string parameters."
    )


# -- tampering -------------------------------------------------------------------------------


def test_tampered_body() -> None:
    wire = sign(b"Action=Publish&Message=pay+10")
    with pytest.raises(SignatureDoesNotMatch) as exc:
        replace(wire, body=b"Action=Publish&Message=pay+99").verify()
    assert exc.value.message.startswith("The request signature we calculated does not match")
    assert (exc.value.code, exc.value.status) == ("SignatureDoesNotMatch", 403)


def test_tampered_signed_header() -> None:
    with pytest.raises(SignatureDoesNotMatch):
        sign().with_header("content-type", "text/plain").verify()


def test_unsigned_header_may_change() -> None:
    assert sign().with_header("user-agent", "curl/8").verify().access_key_id == AKID


def test_tampered_host_and_path() -> None:
    with pytest.raises(SignatureDoesNotMatch):
        sign().with_header("host", "127.0.0.1:9999").verify()
    with pytest.raises(SignatureDoesNotMatch):
        replace(sign(url="http://127.0.0.1:8765/sns/"), raw_path="/other/").verify()


def test_tampered_date_same_day() -> None:
    wire = sign()
    later = wire.signed_at + timedelta(seconds=1)
    if later.date() != wire.signed_at.date():  # pragma: no cover - signed at 23:59:59
        later = wire.signed_at - timedelta(seconds=1)
    with pytest.raises(SignatureDoesNotMatch):
        wire.with_header("x-amz-date", later.strftime("%Y%m%dT%H%M%SZ")).verify()


def test_tampered_date_other_day() -> None:
    wire = sign()
    other = (wire.signed_at + timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")
    scope_date = wire.signed_at.strftime("%Y%m%d")
    with pytest.raises(SignatureDoesNotMatch) as exc:
        wire.with_header("x-amz-date", other).verify(now=wire.signed_at + timedelta(days=1))
    assert exc.value.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '{scope_date}' != '{other[:8]}', from '{other}'. "
    )


def test_tampered_region_in_scope() -> None:
    wire = sign(region="us-west-2")
    forged = wire.headers["authorization"].replace("/us-west-2/", "/us-east-1/")
    with pytest.raises(SignatureDoesNotMatch):
        wire.with_header("authorization", forged).verify()


def test_wrong_service_in_scope() -> None:
    with pytest.raises(SignatureDoesNotMatch) as exc:
        sign(service="sqs").verify()
    assert exc.value.message == "Credential should be scoped to correct service: 'sns'. "


def test_wrong_terminator_and_service_together() -> None:
    wire = sign()
    forged = wire.headers["authorization"].replace("/sns/aws4_request", "/s3/aws5_request")
    with pytest.raises(SignatureDoesNotMatch) as exc:
        wire.with_header("authorization", forged).verify()
    assert exc.value.message == (
        "Credential should be scoped to correct service: 'sns'. Credential should be scoped "
        "with a valid terminator: 'aws4_request', not 'aws5_request'. "
    )


def test_wrong_secret() -> None:
    with pytest.raises(SignatureDoesNotMatch):
        sign(secret="not-the-secret").verify()


def test_tampered_session_token() -> None:
    wire = sign(akid="AKIDTEMP", secret="temp-secret", token="tok-a")
    with pytest.raises(SignatureDoesNotMatch):
        wire.with_header("x-amz-security-token", "tok-b").verify()


def test_unsigned_session_token_is_rejected() -> None:
    with pytest.raises(SignatureDoesNotMatch) as exc:
        sign().with_header("x-amz-security-token", "smuggled").verify()
    assert exc.value.message == (
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_unknown_access_key() -> None:
    with pytest.raises(InvalidClientTokenId) as exc:
        sign(akid="AKIDUNKNOWN").verify()
    assert exc.value.message == "The security token included in the request is invalid."
    assert (exc.value.code, exc.value.status) == ("InvalidClientTokenId", 403)


# -- clock skew ------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [-14, 14, -15, 15])
def test_skew_within_window(minutes: int) -> None:
    wire = sign()
    assert wire.verify(now=wire.signed_at + timedelta(minutes=minutes)).access_key_id == AKID


@pytest.mark.parametrize(
    ("minutes", "prefix"), [(16, "Signature expired: "), (-16, "Signature not yet current: ")]
)
def test_skew_outside_window(minutes: int, prefix: str) -> None:
    wire = sign()
    with pytest.raises(RequestExpired) as exc:
        wire.verify(now=wire.signed_at + timedelta(minutes=minutes))
    assert exc.value.message.startswith(prefix)


def test_custom_max_skew() -> None:
    wire = sign()
    with pytest.raises(RequestExpired, match=r"- 5 min\.\)$"):
        wire.verify(now=wire.signed_at + timedelta(minutes=6), max_skew=timedelta(minutes=5))


# -- malformed authentication ----------------------------------------------------------------


def test_missing_authentication() -> None:
    headers = {k: v for k, v in SPEC_HEADERS.items() if k != "authorization"}
    with pytest.raises(MissingAuthenticationToken) as exc:
        verify_spec(headers)
    assert exc.value.message == "Request is missing Authentication Token"
    assert (exc.value.code, exc.value.status) == ("MissingAuthenticationToken", 403)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (
            "Bearer abc.def",
            "Authorization header requires 'Credential' parameter. Authorization header requires "
            "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
            "Authorization=Bearer abc.def",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AK/20261122/us-east-1/sns/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires "
            "'SignedHeaders' parameter. "
            "Authorization=AWS4-HMAC-SHA256 Credential=AK/20261122/us-east-1/sns/aws4_request",
        ),
        ("AWS4-HMAC-SHA512 Credential=AK", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."),
        (
            "AWS4-HMAC-SHA256 Credential=AK /20261122/us-east-1/sns/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=00",
            "'/20261122/us-east-1/sns/aws4_request' not a valid key=value pair "
            "(missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 "
            "Credential=AK /20261122/us-east-1/sns/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=00'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AK/20261122/sns, "
            "SignedHeaders=host;x-amz-date, Signature=0",
            "Credential must have exactly 5 slash-delimited elements, "
            "e.g. keyid/date/region/service/term, got 'AK/20261122/sns'",
        ),
    ],
)
def test_malformed_authorization(authorization: str, message: str) -> None:
    with pytest.raises(IncompleteSignature) as exc:
        verify_spec({**SPEC_HEADERS, "authorization": authorization})
    assert exc.value.message == message
    assert (exc.value.code, exc.value.status) == ("IncompleteSignature", 400)


def test_missing_date() -> None:
    headers = {k: v for k, v in SPEC_HEADERS.items() if k != "x-amz-date"}
    with pytest.raises(IncompleteSignature) as exc:
        verify_spec(headers)
    assert exc.value.message == (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=" + SPEC_HEADERS["authorization"]
    )


def test_malformed_date() -> None:
    with pytest.raises(IncompleteSignature) as exc:
        verify_spec({**SPEC_HEADERS, "x-amz-date": "2026-11-22T19:12:41Z"})
    assert exc.value.message == (
        "Date must be in ISO-8601 'basic format'. Got "
        "'2026-11-22T19:12:41Z'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


@pytest.mark.parametrize(
    ("signed", "message"),
    [
        (
            "content-type;x-amz-date",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        ("content-type;host", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."),
    ],
)
def test_required_signed_headers(signed: str, message: str) -> None:
    authorization = SPEC_HEADERS["authorization"].replace("content-type;host;x-amz-date", signed)
    with pytest.raises(SignatureDoesNotMatch) as exc:
        verify_spec({**SPEC_HEADERS, "authorization": authorization})
    assert exc.value.message == message


def test_all_errors_are_auth_errors() -> None:
    for cls in (
        MissingAuthenticationToken,
        IncompleteSignature,
        InvalidClientTokenId,
        SignatureDoesNotMatch,
        RequestExpired,
    ):
        assert issubclass(cls, AuthError)
