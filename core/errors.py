"""Error kinds shared by the workflow's validators and the API's single error shape.

The workflow raises `ApplicationError(message, details, type=KIND)`; the API maps the kind to
its HTTP status, so a rule is written once, where the state is.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

NOT_FOUND = "NotFound"
FORBIDDEN = "Forbidden"
CONFLICT = "Conflict"
INVALID = "Invalid"
PAYMENT_DECLINED = "PaymentDeclined"
PAYMENT_UNAVAILABLE = "PaymentUnavailable"

HTTP_STATUS = {
    NOT_FOUND: 404,
    FORBIDDEN: 403,
    CONFLICT: 409,
    INVALID: 422,
    PAYMENT_DECLINED: 402,
    PAYMENT_UNAVAILABLE: 503,
}

ERROR_CODES = {
    NOT_FOUND: "not_found",
    FORBIDDEN: "forbidden",
    CONFLICT: "invalid_stage",
    INVALID: "invalid_request",
    PAYMENT_DECLINED: "payment_declined",
    PAYMENT_UNAVAILABLE: "payment_unavailable",
}


def refusal(kind: str, message: str, details: dict[str, object] | None = None) -> ApplicationError:
    """A refusal raised in the workflow for the API to map to its status; never retried."""
    return ApplicationError(message, details or {}, type=kind, non_retryable=True)
