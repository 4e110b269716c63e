"""One error shape for every failure: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import stripe
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from core import errors
from core.accounts import TokenAlreadyRotated, TooManyTokens

log = logging.getLogger("api")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def not_found(what: str = "internship") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


# A workflow refusal's kind (`core.errors`) as the status and code callers get.
REFUSALS = {
    errors.NOT_FOUND: (404, "not_found"),
    errors.FORBIDDEN: (403, "forbidden"),
    errors.CONFLICT: (409, "invalid_stage"),
    errors.INVALID: (422, "invalid_request"),
    errors.PAYMENT_DECLINED: (402, "payment_declined"),
    errors.PAYMENT_UNAVAILABLE: (503, "payment_unavailable"),
}


def refusal_error(kind: str, message: str, details: dict[str, Any]) -> ApiError:
    """The workflow's refusal as the API's error: the status its kind names, and the code the
    refusal names (`posting_full`) or else its kind's."""
    if kind not in REFUSALS:
        return ApiError(409, "conflict", f"the transition was not applied: {message}")
    status, kind_code = REFUSALS[kind]
    details = dict(details)
    code = details.pop("code", None)
    return ApiError(status, code if isinstance(code, str) else kind_code, message, details)


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    415: "unsupported_media_type",
    422: "invalid_request",
}


# Seconds a client should wait before retrying a 503.
RETRY_AFTER = 1


def unavailable(code: str, message: str, request: Request | None = None) -> Response:
    """Not the caller's fault and nothing changed: try again shortly."""
    if request is not None and (page := _page(request, 503, message)):
        page.headers["Retry-After"] = str(RETRY_AFTER)
        return page
    return JSONResponse(error_body(code, message), 503, {"Retry-After": str(RETRY_AFTER)})


# FastAPI's answer when it cannot even decode a body.
BODY_NOT_PARSED = "There was an error parsing the body"


def _problem(error: Any) -> dict[str, str]:
    """One validation problem as the caller reads it: which field, and what to fix."""
    loc = list(error["loc"])
    if error["type"] == "json_invalid":
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = error.get("ctx", {}).get("error", "malformed")
        return {"field": "body", "problem": f"is not valid JSON ({reason}{where})"}
    field = ".".join(str(p) for p in loc if p != "body") or "body"
    return {"field": field, "problem": error["msg"].removeprefix("Value error, ")}


# What any operation may answer besides success, all in the one error shape: declared in the
# OpenAPI document so clients (and the schema fuzzer) know every status they can meet.
ERROR_STATUSES = {
    "400": "The request can't be read (a webhook's signature or event)",
    "401": "No token, or an unknown one",
    "402": "The card was declined",
    "403": "Signed in, but not allowed to do this",
    "404": "Not found, or not visible to this caller",
    "409": "Not possible now: the stage, an earlier request, a full posting",
    "413": "The body is larger than the service takes (MAX_BODY_BYTES)",
    "415": "The body is not JSON",
    "422": "The input is invalid: the error says which field and why",
    "503": "Temporal, Stripe or the database did not answer, or the service is busy",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the error statuses and their one shape on every operation of an OpenAPI doc."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in schema["paths"].values():
        for operation in operations.values():
            for status, why in ERROR_STATUSES.items():
                operation["responses"][status] = {"description": why, "content": error}
    return schema


ErrorPage = Callable[[Request, int, str], Response]


def _page(request: Request, status: int, message: str) -> Response | None:
    """The web pages' own error page, for a browser on a page (never for the JSON API)."""
    page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if page is None or request.url.path.startswith(API_PATHS):
        return None
    return page(request, status, message)


# Paths that always answer in the JSON error shape.
API_PATHS = ("/v1/", "/healthz", "/metrics", "/codec", "/docs", "/openapi.json")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if page := _page(request, exc.status, exc.message):
            return page
        headers = {
            401: {"WWW-Authenticate": "Bearer"},
            503: {"Retry-After": str(RETRY_AFTER)},
        }.get(exc.status)
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [_problem(e) for e in exc.errors()]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        if page := _page(request, 422, f"This address or form can't be used: {summary}"):
            return page
        return JSONResponse(
            error_body("invalid_request", f"Invalid request: {summary}", {"errors": problems}), 422
        )

    @app.exception_handler(TooManyTokens)
    async def _too_many_tokens(_: Request, exc: TooManyTokens) -> JSONResponse:
        return JSONResponse(error_body("too_many_tokens", str(exc)), 409)

    @app.exception_handler(TokenAlreadyRotated)
    async def _token_rotated(_: Request, exc: TokenAlreadyRotated) -> JSONResponse:
        return JSONResponse(error_body("token_rotated", str(exc)), 409)

    @app.exception_handler(RPCError)
    async def _temporal_down(request: Request, exc: RPCError) -> Response:
        return unavailable(
            "unavailable",
            f"Temporal did not answer ({exc.status.name}); nothing was changed, try again shortly",
            request,
        )

    @app.exception_handler(stripe.StripeError)
    async def _stripe_down(request: Request, exc: stripe.StripeError) -> Response:
        return unavailable(
            "payment_unavailable",
            f"The payment provider did not answer ({type(exc).__name__}); try again shortly",
            request,
        )

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable: %s", exc)
        return unavailable(
            "unavailable",
            "The database did not answer; nothing was changed, try again shortly",
            request,
        )

    @app.exception_handler(PoolTimeout)
    async def _overloaded(request: Request, exc: PoolTimeout) -> Response:
        log.warning("database pool exhausted: %s", exc)
        return unavailable(
            "overloaded", "The service is busy; nothing was changed, try again", request
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if page := _page(request, exc.status_code, str(exc.detail)):
            return page
        if exc.status_code == 400 and exc.detail == BODY_NOT_PARSED:  # e.g. not UTF-8
            problem = {"field": "body", "problem": "is not valid JSON (not UTF-8 text)"}
            message = f"Invalid request: body: {problem['problem']}"
            return JSONResponse(error_body("invalid_request", message, {"errors": [problem]}), 422)
        code = HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, exc.headers)
