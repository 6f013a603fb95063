"""Exceptions that carry data, translated to HTTP statuses or JobRun rows at the edge."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class: every error the connector raises on purpose."""

    code = "error"

    def __init__(self, message: str, **data: object) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class ConfigError(ConnectorError):
    code = "config"


class ValidationError(ConnectorError):
    """Input that cannot be accepted; ``field`` names what was wrong."""

    code = "invalid"

    def __init__(self, message: str, field: str | None = None, **data: object) -> None:
        super().__init__(message, field=field, **data)
        self.field = field


class MappingError(ValidationError):
    """A platform payload that cannot be turned into a normalized record."""

    code = "bad_payload"


class NotFound(ConnectorError):
    code = "not_found"


class SignatureError(ConnectorError):
    """A webhook, link or proxy request whose signature does not verify."""

    code = "bad_signature"


class PlatformError(ConnectorError):
    """The store answered with an error; ``retryable`` says whether waiting can help."""

    code = "platform"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        field: str | None = None,
        **data: object,
    ) -> None:
        super().__init__(message, status=status, retryable=retryable, retry_after=retry_after, field=field, **data)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.field = field


class AuthError(PlatformError):
    """Credentials refused (401/403): the shop needs re-authorization."""

    code = "auth"


class ThrottledError(PlatformError):
    code = "throttled"


class DeliveryError(ConnectorError):
    """An outbox message could not be delivered; ``retryable`` decides between retry and dead letter."""

    code = "delivery"

    def __init__(self, message: str, *, retryable: bool = True, **data: object) -> None:
        super().__init__(message, retryable=retryable, **data)
        self.retryable = retryable
