"""The kinds of refusal the workflow's validators raise.

The workflow raises `ApplicationError(message, details, type=KIND)`; the HTTP layer maps the
kind to its status and code (`api.errors.refusal_error`), so a rule is written once, where the
state is.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

NOT_FOUND = "NotFound"
FORBIDDEN = "Forbidden"
CONFLICT = "Conflict"
INVALID = "Invalid"
PAYMENT_DECLINED = "PaymentDeclined"
PAYMENT_UNAVAILABLE = "PaymentUnavailable"


def refusal(kind: str, message: str, details: dict[str, object] | None = None) -> ApplicationError:
    """A refusal raised in the workflow for the API to map to its status; never retried."""
    return ApplicationError(message, details or {}, type=kind, non_retryable=True)
