"""SNS ARNs: building them, and parsing the ones callers send with SNS's exact errors."""

from __future__ import annotations

from dataclasses import dataclass

from pushgate.domain.errors import InvalidParameter


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Scope:
    """Where a call happens: the account and region that every ARN it makes carries."""

    account_id: str
    region: str

    @property
    def prefix(self) -> str:
        return f"arn:{partition(self.region)}:sns:{self.region}:{self.account_id}:"

    def application_arn(self, platform: str, name: str) -> str:
        return f"{self.prefix}app/{platform}/{name}"

    def endpoint_arn(self, platform: str, app_name: str, endpoint_id: str) -> str:
        return f"{self.prefix}endpoint/{platform}/{app_name}/{endpoint_id}"

    def topic_arn(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def subscription_arn(self, topic_arn: str, subscription_id: str) -> str:
        return f"{topic_arn}:{subscription_id}"


def _elements(value: str, param: str, minimum: int = 6) -> list[str]:
    parts = value.split(":")
    if len(parts) < minimum or parts[0] != "arn":
        raise InvalidParameter(
            f"Invalid parameter: {param} Reason: An ARN must have at least {minimum} elements, "
            f"not {len(parts)}"
        )
    return parts


def check_region(value: str, param: str, scope: Scope) -> None:
    """ARNs of another region (or account) name nothing here, as on SNS."""
    parts = value.split(":")
    if parts[3] != scope.region or parts[4] != scope.account_id:
        raise InvalidParameter(f"Invalid parameter: {param}")


def _check_resource(value: str, param: str, kind: str, slashes: int) -> None:
    parts = _elements(value, param)
    resource = ":".join(parts[5:]).split("/")
    if resource[0] != kind or len(resource) != slashes + 1:
        raise InvalidParameter(
            f"Invalid parameter: {param} Reason: Wrong number of slashes in relative portion "
            "of the ARN."
        )


def check_application_arn(value: str, param: str = "PlatformApplicationArn") -> None:
    """``...:app/{Platform}/{Name}``"""
    _check_resource(value, param, "app", 2)


def check_endpoint_arn(value: str, param: str = "EndpointArn") -> None:
    """``...:endpoint/{Platform}/{AppName}/{id}``"""
    _check_resource(value, param, "endpoint", 3)


def check_topic_arn(value: str, param: str = "TopicArn") -> None:
    parts = _elements(value, param)
    if len(parts) != 6 or "/" in parts[5]:
        raise InvalidParameter(f"Invalid parameter: {param}")


def check_subscription_arn(value: str, param: str = "SubscriptionArn") -> None:
    parts = _elements(value, param)
    if len(parts) == 6:
        raise InvalidParameter("Invalid parameter: SubscriptionId")
    if len(parts) != 7:
        raise InvalidParameter(f"Invalid parameter: {param}")


def kind_of(value: str) -> str:
    """``application``, ``endpoint``, ``topic``, ``subscription`` or ``unknown``."""
    parts = value.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        return "unknown"
    if len(parts) == 7:
        return "subscription"
    resource = parts[5]
    if resource.startswith("app/"):
        return "application"
    if resource.startswith("endpoint/"):
        return "endpoint"
    return "topic" if len(parts) == 6 and "/" not in resource else "unknown"
