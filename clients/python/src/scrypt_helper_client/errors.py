"""The errors the client raises; none of them carries an input or an output."""

from __future__ import annotations


class ClientError(Exception):
    """Base of the errors this package raises."""


class HelperError(ClientError):
    """The helper answered with an error (other than a retryable one) or with an invalid answer.

    ``message`` is the service's own text, as in the JavaScript client.
    """

    def __init__(self, status: int, errno: int | None, message: str) -> None:
        self.status = status
        self.errno = errno
        self.message = message
        code = "" if errno is None else f" (errno {errno})"
        super().__init__(f"helper answered {status}{code}: {message}")


class HelperUnavailable(ClientError):
    """No answer from the helper within the deadline or attempts, and local fallback is off."""
