"""Rendering the pages: one Jinja2 environment over core/templates/web/, and what every page gets
(who is signed in, the CSRF token for its forms, the messages left for it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from activities.notifications import TEMPLATES, format_money
from api.deps import Caller
from api.web import session
from core.internship import Stage

# The stylesheet, package data beside the templates (core/templates/web/static/).
STATIC = TEMPLATES / "web" / "static"

STAGE_LABELS = {
    Stage.POSTED: "Open for applications",
    Stage.MATCHED: "Launcher selected",
    Stage.IN_PROGRESS: "In progress",
    Stage.IN_REVIEW: "In review",
    Stage.APPROVED: "Approved, paying out",
    Stage.SETTLING: "Settling",
    Stage.PAID: "Paid, awaiting ratings",
    Stage.COMPLETED: "Completed",
    Stage.EXPIRED: "Expired",
    Stage.CANCELLED: "Cancelled",
    Stage.REFUNDED: "Refunded",
    Stage.RESOLVED: "Resolved",
}


def _when(at: datetime | None, style: str = "full") -> str:
    if at is None:
        return "—"
    at = at.astimezone(UTC)
    return at.strftime("%b %d, %Y" if style == "date" else "%b %d, %Y %H:%M UTC")


def _relative(at: datetime | None) -> str:
    """ "in 3 days", "2 hours ago": how far a due date is, as people say it."""
    if at is None:
        return ""
    delta = at - datetime.now(UTC)
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            amount = f"{n} {unit}{'s' if n != 1 else ''}"
            break
    else:
        amount = "a moment"
    return f"in {amount}" if delta.total_seconds() > 0 else f"{amount} ago"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda cents, currency="usd": format_money(cents, currency)
    env.filters["when"] = _when
    env.filters["relative"] = _relative
    env.filters["stage_label"] = lambda stage: STAGE_LABELS.get(Stage(stage), stage)
    return env


ENV = _environment()


def page(
    request: Request,
    template: str,
    viewer: Caller | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    settings = request.app.state.settings
    html = ENV.get_template(f"web/{template}").render(
        request=request,
        viewer=viewer,
        role=viewer.actor.role.value if viewer else None,
        csrf=session.csrf_token(request),
        csrf_field=session.CSRF_FIELD,
        # A fresh one-time key per rendered form: a form sent twice (a double click, a resend)
        # acts once.
        form_key=session.form_key(request),
        flashes=session.take_flashes(request),
        temporal_ui=settings.temporal_ui_url.rstrip("/"),
        namespace=settings.temporal_namespace,
        **context,
    )
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})


def redirect(path: str) -> RedirectResponse:
    """After a POST: the browser GETs the page, so a reload never sends the form again."""
    return RedirectResponse(path, status_code=303)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {
        403: "Not allowed",
        404: "Not found",
        409: "That can't happen now",
        503: "Try again shortly",
    }
    return page(
        request,
        "error.html",
        session.maybe_viewer(request),
        status,
        title=titles.get(status, "Something went wrong"),
        message=message if status != 404 else "There is nothing here, or it isn't yours to see.",
    )
