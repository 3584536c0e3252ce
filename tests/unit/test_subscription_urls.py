"""The password of an HTTPS subscriber URL is taken out and masked before it is stored."""

from __future__ import annotations

import pytest

from pushgate.domain.subscriptions import hide_password


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        ("https://hooks.example.com/x", "https://hooks.example.com/x", None),
        ("https://user@hooks.example.com/x", "https://user@hooks.example.com/x", None),
        (
            "https://user:s3cr%2Ft@hooks.example.com:8443/x?a=1",
            "https://user:****@hooks.example.com:8443/x?a=1",
            "s3cr%2Ft",
        ),
        ("https://user:@hooks.example.com/", "https://user:****@hooks.example.com/", ""),
        ("https://user:****@hooks.example.com/", "https://user:****@hooks.example.com/", None),
        ("https://u:p:q@h.example/", "https://u:****@h.example/", "p:q"),
    ],
)
def test_hide_password(url: str, shown: str, password: str | None) -> None:
    assert hide_password(url) == (shown, password)
