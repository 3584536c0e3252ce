"""AWS Signature Version 4 verification for the SNS query API.

Implements ``/work/shared/specs/sns-api.md`` §3 (server algorithm) with the auth error codes of
§2.4. Pure functions, no I/O: the caller hands in the request as received (lower-case header
names, raw percent-encoded path and query string, body bytes) and a secret lookup.

Error texts follow the ones real AWS endpoints return (quoted in public bug reports and in the
AWS "Troubleshoot signed requests" page). Both the ``Authorization`` header form and the
presigned query-string form (``X-Amz-Algorithm=...``) are accepted; the payload is always
hashed, because for SNS the body *is* the operation (``UNSIGNED-PAYLOAD`` never matches).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from pushgate.domain.errors import (
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
ISO_BASIC = "%Y%m%dT%H%M%SZ"
MAX_PRESIGN_EXPIRES = 604800  # one week, as for every SigV4 presigned URL
_ISO_BASIC_RE = re.compile(r"\d{8}T\d{6}Z")
_REGION_RE = re.compile(r"[a-z0-9-]+")
_NOT_SIGNED = "'{}' must be a 'SignedHeader' in the AWS Authorization."
_QUERY_PARAMS = "X-Amz-Algorithm X-Amz-Credential X-Amz-Date X-Amz-SignedHeaders X-Amz-Signature"


@dataclass(frozen=True)
class SignedRequest:
    access_key_id: str
    region: str  # from the credential scope
    session_token: str | None


@dataclass(frozen=True)
class _Auth:
    credential: str
    signed_headers: str
    signature: str
    date_name: str  # "x-amz-date" or "date": which header (or query param) carries the time
    date_value: str
    expires: int | None  # X-Amz-Expires of a presigned URL
    presigned: bool


# -- canonical request (spec §3 step 4) ------------------------------------------------------


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 plus collapsing of ``//``, exactly as botocore normalises before signing."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last or "/"


def canonical_uri(raw_path: str) -> str:
    """Encode the path *as received* once more, like botocore (``quote(path, safe='/~')``).

    botocore signs the already percent-encoded URL path encoded again (``%20`` -> ``%2520``),
    the SigV4 "encode twice" rule for non-S3 services; unquoting first would break that.
    """
    return quote(_remove_dot_segments(raw_path), safe="/~")


def _uri_candidates(raw_path: str) -> list[str]:
    # An endpoint_url given with a literal space or non-ASCII character is signed encoded once
    # but percent-encoded on the wire by urllib3, so only the decoded form reproduces it.
    first = canonical_uri(raw_path)
    alt = quote(unquote(_remove_dot_segments(raw_path)), safe="/~")
    return [first] if alt == first else [first, alt]


def _parse_query(query_string: str) -> list[tuple[str, str]]:
    # "+" is a literal plus here (re-encoded %2B), as in RFC 3986; botocore always sends %20.
    pairs = (p.partition("=") for p in query_string.split("&") if p)
    return [(unquote(k), unquote(v)) for k, _, v in pairs]


def canonical_query_string(pairs: list[tuple[str, str]]) -> str:
    """RFC 3986-encode each decoded key and value (safe ``-_.~``), sort, join with ``&``."""
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(
    *,
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: str,
    payload_hash: str,
) -> str:
    names = signed_headers.split(";")
    lines = "".join(f"{n}:{' '.join(headers.get(n.lower(), '').split())}\n" for n in names)
    return "\n".join([method.upper(), uri, query, lines, signed_headers, payload_hash])


# -- string to sign and key (spec §3 steps 5-6) ----------------------------------------------


def string_to_sign(timestamp: str, scope: str, canonical_request_hash: str) -> str:
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{canonical_request_hash}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning, cached: it only changes per key, day, region and service."""
    k = _hmac(f"AWS4{secret}".encode(), date)
    return _hmac(_hmac(_hmac(k, region), service), TERMINATOR)


def compute_signature(key: bytes, sts: str) -> str:
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


# -- parsing the auth parameters -------------------------------------------------------------


def _from_header(value: str, headers: Mapping[str, str]) -> _Auth:
    algorithm, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    if algorithm != ALGORITHM and algorithm.startswith("AWS4-"):
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    if algorithm == ALGORITHM:  # anything else ("Bearer ...", SigV2) just lacks every part
        for token in filter(None, re.split(r"[,\s]+", rest)):
            if "=" not in token:
                raise IncompleteSignature(
                    f"'{token}' not a valid key=value pair (missing "
                    f"equal-sign) in Authorization header: '{value}'"
                )
            key, _, val = token.partition("=")
            params.setdefault(key, val)
    date_name = "x-amz-date" if "x-amz-date" in headers else "date"
    problems = [
        f"Authorization header requires '{p}' parameter."
        for p in ("Credential", "Signature", "SignedHeaders")
        if p not in params
    ]
    if date_name not in headers:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise IncompleteSignature(" ".join([*problems, f"Authorization={value}"]))
    return _Auth(
        params["Credential"],
        params["SignedHeaders"],
        params["Signature"],
        date_name,
        headers[date_name],
        None,
        presigned=False,
    )


def _from_query(query: list[tuple[str, str]]) -> _Auth:
    params: dict[str, str] = {}
    for k, v in query:
        params.setdefault(k, v)
    missing = [
        f"AWS query-string parameters must include '{p}'."
        for p in _QUERY_PARAMS.split()
        if p not in params
    ]
    if missing:
        raise IncompleteSignature(" ".join([*missing, "Re-examine the query-string parameters."]))
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'.")
    expires = params.get("X-Amz-Expires")
    if expires is not None and not expires.isdigit():
        raise IncompleteSignature("X-Amz-Expires should be a number")
    if expires is not None and int(expires) > MAX_PRESIGN_EXPIRES:
        raise IncompleteSignature(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
        )
    return _Auth(
        params["X-Amz-Credential"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        "x-amz-date",
        params["X-Amz-Date"],
        None if expires is None else int(expires),
        presigned=True,
    )


def _parse_time(value: str, *, http_date_ok: bool) -> datetime:
    if _ISO_BASIC_RE.fullmatch(value):
        try:  # by hand: strptime costs more than the rest of the time checks together
            return datetime(
                int(value[0:4]),
                int(value[4:6]),
                int(value[6:8]),
                int(value[9:11]),
                int(value[11:13]),
                int(value[13:15]),
                tzinfo=UTC,
            )
        except ValueError:
            pass
    elif http_date_ok:  # botocore sends an RFC 7231 Date header when the request carries one
        try:
            parsed = parsedate_to_datetime(value)  # "-0000" (as botocore sends) gives naive
            return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    raise IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _iso(t: datetime) -> str:
    return t.strftime(ISO_BASIC)


def _check_time(t: datetime, now: datetime, max_skew: timedelta, expires: int | None) -> None:
    secs = max_skew.total_seconds()
    span = f"{secs / 60:g} min." if secs % 60 == 0 else f"{secs:g} sec."
    if t > now + max_skew:
        raise RequestExpired(
            f"Signature not yet current: {_iso(t)} is still later than "
            f"{_iso(now + max_skew)} ({_iso(now)} + {span})"
        )
    if expires is not None:  # a presigned URL lives X-Amz-Expires seconds, not ±max_skew
        if now > t + timedelta(seconds=expires):
            raise RequestExpired()
    elif t < now - max_skew:
        raise RequestExpired(
            f"Signature expired: {_iso(t)} is now earlier than "
            f"{_iso(now - max_skew)} ({_iso(now)} - {span})"
        )


def _check_scope(credential: str, service: str, timestamp: str) -> list[str]:
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'"
        )
    _, date, region, scope_service, term = parts
    problems = []  # AWS concatenates every scope complaint, each ending in ". "
    if not _REGION_RE.fullmatch(region):
        problems.append(f"Credential should be scoped to a valid region, not '{region}'. ")
    if scope_service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'. ")
    if term != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{term}'. "
        )
    if date != timestamp[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
            f"version of date from HTTP: '{date}' != '{timestamp[:8]}', from "
            f"'{timestamp}'. "
        )
    if problems:
        raise SignatureDoesNotMatch("".join(problems))
    return parts


def verify_request(
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    service: str = "sns",
    max_skew: timedelta = timedelta(minutes=15),
) -> SignedRequest:
    """Check a SigV4-signed request; return who signed it or raise an :class:`AuthError`.

    ``now`` should be timezone-aware (a naive value is taken as UTC).
    """
    now = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)
    query = _parse_query(query_string)
    authorization = headers.get("authorization", "").strip()
    if authorization:
        auth = _from_header(authorization, headers)
    elif any(k == "X-Amz-Algorithm" for k, _ in query):
        auth = _from_query(query)
        query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    else:
        raise MissingAuthenticationToken()

    signed = auth.signed_headers.split(";")
    if "host" not in signed:
        raise SignatureDoesNotMatch(_NOT_SIGNED.format("Host' or ':authority"))
    if not auth.presigned and auth.date_name not in signed:
        raise SignatureDoesNotMatch(
            _NOT_SIGNED.format("X-Amz-Date" if auth.date_name == "x-amz-date" else "Date")
        )
    # Unsigned, the token could be swapped for another session's; AWS classes the "must be a
    # 'SignedHeader'" family as SignatureDoesNotMatch (403), so we do too.
    if "x-amz-security-token" in headers and "x-amz-security-token" not in signed:
        raise SignatureDoesNotMatch(_NOT_SIGNED.format("X-Amz-Security-Token"))

    t = _parse_time(auth.date_value, http_date_ok=auth.date_name == "date")
    timestamp = auth.date_value if _ISO_BASIC_RE.fullmatch(auth.date_value) else _iso(t)
    _check_time(t, now, max_skew, auth.expires)
    access_key_id, date, region, _, _ = _check_scope(auth.credential, service, timestamp)

    secret = lookup_secret(access_key_id)
    if secret is None:
        raise InvalidClientTokenId()

    body_hash = hashlib.sha256(body).hexdigest()
    payload_hash = headers.get("x-amz-content-sha256", body_hash)
    if payload_hash.lower() != body_hash:
        raise SignatureDoesNotMatch(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )

    key = signing_key(secret, date, region, service)
    scope = f"{date}/{region}/{service}/{TERMINATOR}"
    provided = auth.signature.encode("utf-8", "replace")
    cqs = canonical_query_string(query)
    for uri in _uri_candidates(raw_path):
        creq = canonical_request(
            method=method,
            uri=uri,
            query=cqs,
            headers=headers,
            signed_headers=auth.signed_headers,
            payload_hash=payload_hash,
        )
        sts = string_to_sign(timestamp, scope, hashlib.sha256(creq.encode()).hexdigest())
        if hmac.compare_digest(compute_signature(key, sts).encode(), provided):
            token = headers.get("x-amz-security-token")
            if token is None and auth.presigned:
                token = dict(query).get("X-Amz-Security-Token")
            return SignedRequest(access_key_id, region, token)
    raise SignatureDoesNotMatch()
