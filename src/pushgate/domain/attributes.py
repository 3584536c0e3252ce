"""Small checks shared by the attribute maps of every resource."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pushgate.domain.errors import InvalidParameter, ValidationError


def require_map(attributes: Mapping[str, str] | None, member: str = "attributes") -> None:
    """SNS answers an absent (or empty, which boto3 omits) required map with ValidationError."""
    if not attributes:
        raise ValidationError.null(member)


def reject_unknown(attributes: Mapping[str, str], allowed: Iterable[str]) -> None:
    allowed_set = set(allowed)
    for key in attributes:
        if key not in allowed_set:
            raise InvalidParameter(
                f"Invalid parameter: Attributes Reason: Invalid attribute name: {key}"
            )


def parse_bool(value: str, name: str) -> bool:
    """``true``/``false`` in any case, as SNS accepts them; anything else is an error."""
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidParameter(
            f"Invalid parameter: Attributes Reason: {name}: Invalid value [{value}]. "
            "Must be true or false."
        )
    return lowered == "true"


def bool_text(value: bool) -> str:
    return "true" if value else "false"
