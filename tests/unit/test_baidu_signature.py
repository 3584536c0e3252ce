"""The Baidu request signature (specs/providers.md sec. 5.2) and the channel id rule."""

from __future__ import annotations

import hashlib
import urllib.parse

import pytest

from pushgate.fakes.baidu import expected_sign
from pushgate.providers.baidu import SignedForm, channel_id, php_urlencode, sign

# sec. 5.2: Baidu's documented example, also the isayme/node-baidu-push unit test.
VECTOR_URL = "http://api.tuisong.baidu.com/rest/3.0/test/echo"
VECTOR_SECRET = "87772555E1C16715EBA5C85341684C58"
VECTOR_PARAMS = {
    "apikey": "Ljc710pzAa99GULCo8y48NvB",
    "expires": "1313293565",
    "timestamp": "1427180905",
}
VECTOR_BASE = (
    "POSThttp://api.tuisong.baidu.com/rest/3.0/test/echo"
    "apikey=Ljc710pzAa99GULCo8y48NvBexpires=1313293565timestamp=1427180905"
    "87772555E1C16715EBA5C85341684C58"
)
VECTOR_SIGN = "7d14113142e2a1583b4e9dad3fba73d0"


def test_documented_test_vector() -> None:
    assert sign("POST", VECTOR_URL, VECTOR_PARAMS, VECTOR_SECRET) == VECTOR_SIGN


def test_test_vector_base_string() -> None:
    digest = hashlib.md5(php_urlencode(VECTOR_BASE).encode()).hexdigest()
    assert digest == VECTOR_SIGN


def test_method_is_upper_cased_and_sign_is_left_out() -> None:
    params = {**VECTOR_PARAMS, "sign": "anything"}
    assert sign("post", VECTOR_URL, params, VECTOR_SECRET) == VECTOR_SIGN


def test_the_fake_recomputes_the_same_vector() -> None:
    assert expected_sign("POST", VECTOR_URL, dict(VECTOR_PARAMS), VECTOR_SECRET) == VECTOR_SIGN


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("a b", "a+b"),
        ("~", "%7E"),
        ("-_.", "-_."),
        ("AZaz09", "AZaz09"),
        ('{"x":1}', "%7B%22x%22%3A1%7D"),
        ("é", "%C3%A9"),
        ("/:?&=+", "%2F%3A%3F%26%3D%2B"),
    ],
)
def test_php_urlencode(text: str, encoded: str) -> None:
    assert php_urlencode(text) == encoded


def test_keys_sort_bytewise_without_separators() -> None:
    params = {"b": "2", "a": "1", "B": "0"}
    base = "POSThttps://h/pB=0a=1b=2s"
    expected = hashlib.md5(php_urlencode(base).encode()).hexdigest()
    assert sign("POST", "https://h/p", params, "s") == expected


def test_signed_form_equals_the_reference_signature() -> None:
    params = {
        "apikey": "key",
        "timestamp": "1800000000",
        "msg_type": "1",
        "msg": '{"title":"","description":"héllo ~ world & more"}',
        "msg_expires": "604800",
        "device_type": "4",
        "deploy_status": "2",
    }
    url = "https://127.0.0.1:8443/rest/3.0/push/single_device"
    form = SignedForm.build("POST", url, params, "SECRET")
    for channel in ("3868470218571374398", "1"):
        body = form.body(channel)
        fields = dict(urllib.parse.parse_qsl(body.decode(), strict_parsing=True))
        assert list(fields)[:2] == ["apikey", "channel_id"]
        assert fields.pop("sign") == sign("POST", url, {**params, "channel_id": channel}, "SECRET")
        assert fields == {**params, "channel_id": channel}


def test_signed_form_refuses_keys_sorting_before_channel_id() -> None:
    with pytest.raises(ValueError, match="channel_id"):
        SignedForm.build("POST", "https://h/p", {"apikey": "k", "body": "x"}, "s")


@pytest.mark.parametrize(
    ("token", "channel"),
    [
        ("3868470218571374398", "3868470218571374398"),
        ("3868470218571374398|1234", "3868470218571374398"),
        ("user-1234:channel-3868470218571374398", "3868470218571374398"),
        ("12ab34", "12"),  # equally long runs: the first
        ("ab7", "7"),
        ("no digits", None),
        ("", None),
        ("٣٤٥", None),  # digits of other scripts are no channel id
    ],
)
def test_channel_id_from_token(token: str, channel: str | None) -> None:
    assert channel_id(token) == channel
