"""Rendering of Query-protocol XML replies (specs/sns-api.md sec. 2.3, 2.4).

Replies are built from escaped strings: the shapes are fixed and small, and a tree builder
would cost more than the whole request. Text goes through :func:`escape`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape as _escape

NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters XML 1.0 cannot carry at all, not even as references (sec. 2.2 of the XML spec).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """Escape markup and carriage returns (a parser reads a bare one as a line feed); replace
    characters that no XML may contain with U+FFFD: one of them makes the whole reply unreadable.
    """
    return _escape(_NOT_XML.sub("\ufffd", text), {"\r": "&#13;"})


def el(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


def attributes(values: Mapping[str, str], name: str = "Attributes") -> str:
    entries = "".join(
        f"<entry><key>{escape(k)}</key><value>{escape(v)}</value></entry>"
        for k, v in values.items()
    )
    return f"<{name}>{entries}</{name}>" if entries else f"<{name}/>"


def members(name: str, items: Iterable[str]) -> str:
    """A list: ``<Name><member>..</member>..</Name>``, or ``<Name/>`` when empty."""
    body = "".join(f"<member>{item}</member>" for item in items)
    return f"<{name}>{body}</{name}>" if body else f"<{name}/>"


def next_token(token: str | None) -> str:
    """Omitted on the last page: an empty element would make paginators loop."""
    return el("NextToken", token) if token else ""


def success(action: str, result: str | None, request_id: str) -> bytes:
    """``result`` is the inner XML of ``<{action}Result>``; None for actions without output."""
    wrapped = (
        ""
        if result is None
        else (f"<{action}Result>{result}</{action}Result>" if result else f"<{action}Result/>")
    )
    return (
        f'{_DECLARATION}<{action}Response xmlns="{NAMESPACE}">{wrapped}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()


def error(kind: str, code: str, message: str, request_id: str) -> bytes:
    return (
        f'{_DECLARATION}<ErrorResponse xmlns="{NAMESPACE}"><Error>'
        f"{el('Type', kind)}{el('Code', code)}{el('Message', message)}"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
