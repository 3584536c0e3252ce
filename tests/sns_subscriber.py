"""An HTTP subscriber for the tests, written as one is written for Amazon SNS.

It shares no code with pushgate. Its verifier follows AWS's documented algorithm
("Verifying the signatures of Amazon SNS messages",
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html) the way
SNS validator libraries do:

* the ``SigningCertURL`` must match a host pattern (SNS's libraries default to
  ``sns.<region>.amazonaws.com``; here the pattern is the pushgate server's address) and
  end in ``.pem``;
* the certificate is fetched from it, anonymously;
* the string to sign is rebuilt from the message's fields and checked against
  ``Signature`` with SHA1 (``SignatureVersion`` 1) or SHA256 (2), RSASSA-PKCS1-v1_5.

The server records every request; a subscriber confirms a ``SubscriptionConfirmation`` by
GETting its ``SubscribeURL`` (``auto_confirm``), as the AWS guide's sample does, and can
be told to answer with scripted status codes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_SIGNED_FIELDS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]


class InvalidMessage(Exception):
    pass


def string_to_sign(msg: dict[str, Any]) -> bytes:
    names = _SIGNED_FIELDS.get(msg.get("Type", ""))
    if names is None:
        raise InvalidMessage(f"unknown Type {msg.get('Type')!r}")
    out = ""
    for name in names:
        if name == "Subject" and name not in msg:
            continue
        out += name + "\n" + msg[name] + "\n"
    return out.encode("utf-8")


def verify_with_certificate(msg: dict[str, Any], cert_pem: bytes) -> None:
    """Raises cryptography's InvalidSignature (or InvalidMessage) unless ``msg`` verifies."""
    algorithms = {"1": hashes.SHA1(), "2": hashes.SHA256()}
    if msg.get("SignatureVersion") not in algorithms:
        raise InvalidMessage(f"unknown SignatureVersion {msg.get('SignatureVersion')!r}")
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        base64.b64decode(msg["Signature"]),
        string_to_sign(msg),
        padding.PKCS1v15(),
        algorithms[msg["SignatureVersion"]],
    )


def verify(msg: dict[str, Any], cert_host_pattern: str) -> None:
    """What a subscriber does with a message: check where the certificate comes from,
    fetch it, verify the signature."""
    url = msg.get("SigningCertURL", "")
    if not re.match(cert_host_pattern, url) or not url.endswith(".pem"):
        raise InvalidMessage(f"SigningCertURL {url!r} is not trusted")
    answer = httpx.get(url, timeout=10)
    answer.raise_for_status()
    verify_with_certificate(msg, answer.content)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def type(self) -> str:
        return self.headers.get("x-amz-sns-message-type", "")

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


_REALM, _NONCE = "hooks", "dcd98b7102dd2f0e8b11d0f600bfb0c093"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_ok(header: str, method: str, user: str, password: str) -> bool:
    """RFC 7616's MD5 response with qop=auth, computed here, not by a library."""
    pairs = re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header[len("Digest ") :])
    fields = {name: quoted or bare for name, quoted, bare in pairs}
    if fields.get("username") != user or fields.get("nonce") != _NONCE:
        return False
    ha1 = _md5(f"{user}:{_REALM}:{password}")
    ha2 = _md5(f"{method}:{fields.get('uri', '')}")
    expected = _md5(f"{ha1}:{_NONCE}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
    return fields.get("response") == expected


@dataclass
class Subscriber:
    """A running subscriber: what it received, and how it answers next."""

    url: str
    cert_host_pattern: str = ""
    auto_confirm: bool = True
    # ("basic" | "digest", user, password): the credentials the subscriber demands.
    credentials: tuple[str, str, str] | None = None
    unauthorized: int = 0
    received: list[Received] = field(default_factory=list)
    # The status codes to answer with, per path, before answering 200 again.
    statuses: dict[str, deque[int]] = field(default_factory=dict)
    verified: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, got: Received) -> int:
        """Answer a request; it is listed in ``received`` once handled (verified, and
        confirmed when it asks to be)."""
        with self.lock:
            scripted = self.statuses.get(got.path)
            status = scripted.popleft() if scripted else 200
        try:
            if status != 200 or got.headers.get("x-amz-sns-rawdelivery") == "true":
                return status
            msg = got.json()
            verify(msg, self.cert_host_pattern)
            with self.lock:
                self.verified += 1
            if self.auto_confirm and msg["Type"] == "SubscriptionConfirmation":
                httpx.get(msg["SubscribeURL"], timeout=10).raise_for_status()
        except Exception as exc:  # recorded for the test to assert on
            with self.lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            return 400
        finally:
            with self.lock:
                self.received.append(got)
        return 200

    def script(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with ``statuses``, then 200."""
        with self.lock:
            self.statuses.setdefault(path, deque()).extend(statuses)

    def challenge(self, method: str, headers: dict[str, str]) -> str | None:
        """The ``WWW-Authenticate`` to answer 401 with, or None when authorised."""
        if self.credentials is None:
            return None
        scheme, user, password = self.credentials
        given = headers.get("authorization", "")
        if scheme == "basic":
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if given == expected:
                return None
            challenge = f'Basic realm="{_REALM}"'
        else:
            if given.startswith("Digest ") and _digest_ok(given, method, user, password):
                return None
            challenge = f'Digest realm="{_REALM}", qop="auth", nonce="{_NONCE}", algorithm=MD5'
        with self.lock:
            self.unauthorized += 1
        return challenge

    def of_type(self, kind: str, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.type == kind and (path is None or r.path == path)]

    def wait_for(
        self, kind: str, count: int = 1, path: str | None = None, timeout: float = 20.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of_type(kind, path)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"{count} {kind} to {path} not received in {timeout}s; got "
            f"{[(r.type, r.path) for r in self.received]}; errors {self.errors}"
        )

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.statuses.clear()
            self.errors.clear()
            self.verified = 0
            self.unauthorized = 0
            self.credentials = None


def _handler(subscriber: Subscriber) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            got = Received(
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            challenge = subscriber.challenge("POST", got.headers)
            if challenge is not None:
                self.send_response(401)
                self.send_header("www-authenticate", challenge)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            status = subscriber.handle(got)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_subscriber(
    cert_host_pattern: str,
    *,
    auto_confirm: bool = True,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Subscriber]:
    """A subscriber on 127.0.0.1 on a free port, for the duration of the block; over
    HTTPS with ``tls`` (certificate chain and key files)."""
    subscriber = Subscriber("", cert_host_pattern, auto_confirm)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(subscriber))
    scheme = "http"
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    subscriber.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield subscriber
    finally:
        server.shutdown()
        server.server_close()
