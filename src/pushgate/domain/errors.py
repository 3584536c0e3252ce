"""The one error hierarchy of pushgate.

Every error a caller can see is an :class:`SnsError`. The class knows its SNS error code
and HTTP status; the API layers render it (XML on the SNS API, a JSON problem on the
REST API) in one place each. Domain code raises and never formats a reply.

::

    SnsError
    ├── InvalidParameter            400  almost every validation error
    ├── ParameterValueInvalid       400  message-attribute validation
    ├── ValidationError             400  a required member is absent
    ├── NotFound                    404  topic / subscription / application / endpoint
    ├── ResourceNotFound            404  tagging a missing resource
    ├── EndpointDisabled            400
    ├── PlatformApplicationDisabled 400
    ├── TagLimitExceeded            400
    ├── TopicLimitExceeded          403
    ├── EmptyBatchRequest           400  PublishBatch without entries
    ├── TooManyEntriesInBatchRequest 400 PublishBatch with more than 10 entries
    ├── BatchEntryIdsNotDistinct    400
    ├── InvalidBatchEntryId         400
    ├── BatchRequestTooLong         400
    ├── AuthorizationError          403
    ├── InvalidAction               400  unknown Action
    ├── MissingAction               400  no Action at all
    ├── AuthError                        SigV4 failures, never retried by botocore
    │   ├── MissingAuthenticationToken  403
    │   ├── IncompleteSignature         400
    │   ├── InvalidClientTokenId        403
    │   ├── SignatureDoesNotMatch       403
    │   └── RequestExpired              400
    └── InternalError               500  Type=Receiver

The class docstring is the default message, as in procrastinate.
"""

from __future__ import annotations

from typing import ClassVar


class SnsError(Exception):
    """An error occurred."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else (self.__doc__ or "").strip()
        super().__init__(self.message)

    @property
    def sender_fault(self) -> bool:
        """SNS's ``Type``: ``Sender`` for 4xx, ``Receiver`` for 5xx."""
        return self.status < 500


class InvalidParameter(SnsError):
    """Invalid parameter."""

    code, status = "InvalidParameter", 400


class ParameterValueInvalid(SnsError):
    """Invalid parameter value."""

    code, status = "ParameterValueInvalid", 400


class ValidationError(SnsError):
    """1 validation error detected."""

    code, status = "ValidationError", 400

    @classmethod
    def null(cls, member: str) -> ValidationError:
        """The message SNS gives when a required member is absent."""
        return cls(
            f"1 validation error detected: Value null at '{member}' failed to satisfy "
            "constraint: Member must not be null"
        )


class NotFound(SnsError):
    """Resource does not exist."""

    code, status = "NotFound", 404


class ResourceNotFound(SnsError):
    """Resource does not exist"""

    code, status = "ResourceNotFound", 404


class EndpointDisabled(SnsError):
    """Endpoint is disabled"""

    code, status = "EndpointDisabled", 400


class PlatformApplicationDisabled(SnsError):
    """Platform application is disabled"""

    code, status = "PlatformApplicationDisabled", 400


class TagLimitExceeded(SnsError):
    """Could not complete request: tag quota of per resource exceeded"""

    code, status = "TagLimitExceeded", 400


class TopicLimitExceeded(SnsError):
    """Topic limit exceeded"""

    code, status = "TopicLimitExceeded", 403


class EmptyBatchRequest(SnsError):
    """The batch request doesn't contain any entries."""

    code, status = "EmptyBatchRequest", 400


class TooManyEntriesInBatchRequest(SnsError):
    """The batch request contains more entries than permissible."""

    code, status = "TooManyEntriesInBatchRequest", 400


class BatchEntryIdsNotDistinct(SnsError):
    """Two or more batch entries in the request have the same Id."""

    code, status = "BatchEntryIdsNotDistinct", 400


class InvalidBatchEntryId(SnsError):
    """The Id of a batch entry in the batch request is invalid."""

    code, status = "InvalidBatchEntryId", 400


class BatchRequestTooLong(SnsError):
    """The length of all the messages put together is more than the limit."""

    code, status = "BatchRequestTooLong", 400


class AuthorizationError(SnsError):
    """Not authorized."""

    code, status = "AuthorizationError", 403


class InvalidAction(SnsError):
    """The action or operation requested is invalid."""

    code, status = "InvalidAction", 400


class MissingAction(SnsError):
    """The request must contain the parameter Action."""

    code, status = "MissingAction", 400


class AuthError(SnsError):
    """Authentication failed."""

    code, status = "AccessDenied", 403


class MissingAuthenticationToken(AuthError):
    """Request is missing Authentication Token"""

    code, status = "MissingAuthenticationToken", 403


class IncompleteSignature(AuthError):
    """The request signature does not conform to AWS standards."""

    code, status = "IncompleteSignature", 400


class InvalidClientTokenId(AuthError):
    """The security token included in the request is invalid."""

    code, status = "InvalidClientTokenId", 403


class SignatureDoesNotMatch(AuthError):
    """The request signature we calculated does not match the signature you provided. \
Check your AWS Secret Access Key and signing method. Consult the service documentation \
for details."""

    code, status = "SignatureDoesNotMatch", 403


class RequestExpired(AuthError):
    """Request has expired."""

    code, status = "RequestExpired", 400


class InternalError(SnsError):
    """Internal Error"""

    code, status = "InternalError", 500
