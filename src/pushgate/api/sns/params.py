"""Decoding of the Query protocol's form parameters (specs/sns-api.md sec. 2.1).

botocore flattens maps to ``Attributes.entry.N.key``/``.value``, lists of structures to
``Tags.member.N.Key``, lists of strings to ``TagKeys.member.N``, and sends an empty list as
a bare ``TagKeys=``. Entries are grouped by prefix and ordered by their numeric index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from pushgate.domain.errors import ValidationError

_INDEXED = re.compile(r"(\d+)\.(.+)")


def member_name(param: str) -> str:
    """SNS's camelCase member name used in ValidationError texts (``TopicArn`` -> ``topicArn``)."""
    return param[:1].lower() + param[1:]


class Params:
    """The parameters of one request, with typed accessors for each serialisation shape."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    @classmethod
    def parse(cls, body: bytes, query: str = "") -> Params:
        pairs = parse_qsl(query, keep_blank_values=True) if query else []
        if body:
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return cls(dict(pairs))

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def required(self, name: str) -> str:
        value = self._values.get(name)
        if value is None:
            raise ValidationError.null(member_name(name))
        return value

    def boolean(self, name: str) -> bool:
        return (self._values.get(name) or "").lower() == "true"

    def _indexed(self, prefix: str) -> dict[int, dict[str, str]]:
        """``{N: {suffix: value}}`` for every ``{prefix}N.{suffix}`` parameter."""
        groups: dict[int, dict[str, str]] = {}
        start = prefix + "."
        for key, value in self._values.items():
            if key.startswith(start):
                match = _INDEXED.fullmatch(key[len(start) :])
                if match:
                    groups.setdefault(int(match[1]), {})[match[2]] = value
        return dict(sorted(groups.items()))

    def map(self, name: str, key: str = "key", value: str = "value") -> dict[str, str]:
        """A ``MapStringToString``: ``{name}.entry.N.key`` / ``.value``."""
        result: dict[str, str] = {}
        for entry in self._indexed(f"{name}.entry").values():
            if key in entry:
                result[entry[key]] = entry.get(value, "")
        return result

    def attribute_map(self, name: str) -> dict[str, dict[str, str]]:
        """A map of structures, as MessageAttributes: ``{name}.entry.N.Name`` and
        ``{name}.entry.N.Value.{Field}`` -> ``{Name: {Field: value}}``."""
        return attribute_map(self._values, name)

    def structures(self, name: str) -> list[dict[str, str]] | None:
        """A list of structures (``{name}.member.N.Field``); None when absent altogether."""
        if name not in self._values and not any(k.startswith(name + ".") for k in self._values):
            return None
        return list(self._indexed(f"{name}.member").values())

    def strings(self, name: str) -> list[str] | None:
        """A list of strings (``{name}.member.N``); None when absent altogether."""
        prefix = name + ".member."
        items = [
            (int(k[len(prefix) :]), v)
            for k, v in self._values.items()
            if k.startswith(prefix) and k[len(prefix) :].isdigit()
        ]
        if not items and name not in self._values:
            return None
        return [v for _, v in sorted(items)]


def attribute_map(values: Mapping[str, str], name: str) -> dict[str, dict[str, str]]:
    """``{name}.entry.N.Name`` / ``{name}.entry.N.Value.{Field}`` -> ``{Name: {Field: v}}``;
    also applied to the fields of one batch entry."""
    result: dict[str, dict[str, str]] = {}
    for entry in Params(values)._indexed(f"{name}.entry").values():
        if "Name" in entry:
            result[entry["Name"]] = {
                k[len("Value.") :]: v for k, v in entry.items() if k.startswith("Value.")
            }
    return result
