"""Log lines are JSON with the call's facts; tokens are masked before they get there."""

from __future__ import annotations

import json
import logging

from pushgate.logs import JsonFormatter, mask


def test_mask_keeps_a_recognisable_but_useless_token() -> None:
    token = "0f744707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bbad78"
    assert mask(token) == "0f74…ad78"
    assert mask("short-token") == "*" * len("short-token")


def test_json_lines_carry_extra_fields_and_no_uvicorn_colour_copy() -> None:
    record = logging.LogRecord("pushgate.x", logging.INFO, __file__, 1, "sent %s", ("ok",), None)
    record.action = "delivery_sent"
    record.color_message = "\x1b[1msent\x1b[0m"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "sent ok" and line["action"] == "delivery_sent"
    assert line["level"] == "info" and line["logger"] == "pushgate.x"
    assert "color_message" not in line
