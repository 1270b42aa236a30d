"""Domain errors raised by workflows; claims.api.errors turns each into one JSON answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FieldError:
    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return {"field": self.field, "code": self.code, "message": self.message}


class DomainError(Exception):
    """Base: an HTTP status, a machine code, a message, and per-field errors."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, errors: list[FieldError] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        if code:
            self.code = code

    def extra(self) -> dict[str, object]:
        return {}


class RuleFailed(DomainError):
    """A guard or validation failed: every failed rule is listed."""

    status = 422
    code = "rule_failed"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TransitionNotAllowed(Conflict):
    """The event does not leave from the claim's current state."""

    code = "transition_not_allowed"

    def __init__(self, event: str, state: str, allowed: list[str]) -> None:
        super().__init__(f"'{event}' is not allowed from state '{state}'.")
        self.allowed = allowed
        self.state = state

    def extra(self) -> dict[str, object]:
        return {"state": self.state, "allowed_events": self.allowed}


class TooManyRequests(DomainError):
    """A limit on how often something may be asked was reached; retry after `retry_after` s."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int,
                 errors: list[FieldError] | None = None) -> None:
        super().__init__(message, errors)
        self.retry_after = retry_after

    def extra(self) -> dict[str, object]:
        return {"retry_after": self.retry_after}


class VersionMismatch(DomainError):
    """If-Match named a version the claim has moved past."""

    status = 412
    code = "version_mismatch"


def rule_failed(failures: list[FieldError],
                message: str = "The request breaks a rule.") -> RuleFailed:
    return RuleFailed(message, failures)
