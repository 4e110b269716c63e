"""The web pages, served by the API's app beside /v1: server-rendered, working without
JavaScript, on the same rulebook and workflow updates as the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from api.web import (
    accounts,
    billing,
    conversations,
    images,
    organisation,
    pages,
    search_pages,
    session,
)
from api.web import settings as settings_pages
from api.web.render import STATIC, ErrorPage, error_page, page
from core.settings import Settings

# The forms that send an image: their bodies may be larger (api.middleware.BoundedBodies).
UPLOAD_PATHS = settings_pages.UPLOAD_PATHS


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie="session",
        # The session itself ends server-side (api.web.session); the cookie never outlives it.
        max_age=session.cookie_max_age(settings),
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
    )
    app.state.error_page = error_page
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(accounts.router)
    app.include_router(pages.router)
    app.include_router(search_pages.router)
    app.include_router(settings_pages.router)
    app.include_router(organisation.router)
    app.include_router(images.router)
    app.include_router(conversations.router)
    app.include_router(billing.router)

    @app.exception_handler(session.SignInRequired)
    async def _sign_in_first(request: Request, exc: session.SignInRequired) -> Response:
        back_to = exc.back_to
        if request.method not in ("GET", "HEAD"):  # a stale tab's form: not done, and said so
            back_to = session.form_page(request)
            session.flash(
                request, "You're signed out, so that was not sent: sign in first.", "info"
            )
        return RedirectResponse(session.sign_in_url(back_to), status_code=303)

    @app.exception_handler(session.WrongRole)
    async def _elsewhere(request: Request, exc: session.WrongRole) -> Response:
        session.flash(request, str(exc), "info")
        return RedirectResponse("/dashboard", status_code=303)

    @app.exception_handler(session.CsrfRejected)
    async def _stale_form(request: Request, _: session.CsrfRejected) -> HTMLResponse:
        expired = ErrorPage(
            title="This form has expired",
            message="Go back, reload the page and send the form again.",
        )
        return page(request, None, expired, 403)
