"""Rendering the pages: one Jinja2 environment over core/templates/web/, and what every page gets
(who is signed in, the CSRF token for its forms, the messages left for it)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import ClassVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup, escape

from api.deps import Caller
from api.web import session
from api.web.forms import LIMITS
from core import rulebook, zones
from core.emails import TEMPLATES
from core.formats import day, format_money, plural, when
from core.images import megabytes
from core.internship import Stage
from core.rulebook import OrgRight

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


@pass_context
def _when(page: Context, at: datetime | None, style: str = "full") -> str:
    """A moment in the reader's zone, named ("Mar 14, 2027 17:00 PDT"), or its date."""
    if at is None:
        return "—"
    zone = page.get("reader_zone") or UTC
    return (day if style == "date" else when)(at, zone) or "—"


def reader_zone(viewer: Caller | None, ops_zone: str) -> tzinfo:
    """The zone a page is written in for its reader: theirs, ops' setting, or UTC for someone
    not signed in."""
    if viewer is None:
        return UTC
    return zones.zone(viewer.time_zone if viewer.time_zone is not None else ops_zone)


def _relative(at: datetime | None) -> str:
    """ "in 3 days", "2 hours ago": how far a due date is, as people say it."""
    if at is None:
        return ""
    delta = at - datetime.now(UTC)
    seconds = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            # As people round: 6 days 23 hours is "7 days".
            amount = plural(int(seconds / size + 0.5), unit)
            break
    else:
        amount = "a moment"
    return f"in {amount}" if delta.total_seconds() > 0 else f"{amount} ago"


# A web address in someone's text: http(s) only, up to a space or a character that can't be in
# one unescaped; what ends a sentence after it (a full stop, a closing bracket) is not part of it.
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?"


def linkify(text: str | None) -> Markup:
    """Someone's text as HTML: every character escaped, and the http(s) addresses in it made
    links that pass no credit or referrer on and can't reach back to this page. Line breaks
    are kept by the element's CSS (`.prewrap`), not here."""
    if not text:
        return Markup("")
    parts: list[str] = []
    at = 0
    for found in _URL.finditer(text):
        url = found.group(0)
        while url and (
            url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))
        ):
            url = url[:-1]
        if "://" not in url or url.endswith("://"):
            continue
        parts.append(escape(text[at : found.start()]))
        parts.append(Markup('<a href="{0}" rel="nofollow noopener noreferrer">{0}</a>').format(url))
        at = found.start() + len(url)
    parts.append(escape(text[at:]))
    return Markup("").join(parts)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates change with a deploy, which restarts the process: no stat() per render.
        auto_reload=False,
    )
    env.filters["money"] = lambda cents, currency="usd": format_money(cents, currency)
    env.filters["when"] = _when
    env.filters["relative"] = _relative
    env.filters["plural"] = plural  # {{ minutes|plural("minute") }}: "1 minute", "15 minutes"
    env.filters["stage_label"] = lambda stage: STAGE_LABELS.get(Stage(stage), stage)
    env.filters["linkify"] = linkify  # someone's message: escaped, its web addresses links
    env.filters["megabytes"] = megabytes  # a file's size: "120 KB", "6.3 MB"
    env.globals["limits"] = LIMITS
    return env


ENV = _environment()


class PageContext:
    """What one template is given besides what every page gets (see `page`). Each page has a
    frozen dataclass of its own, beside the handler that renders it, naming its template;
    docs/pages.md lists them all."""

    template: ClassVar[str]


@dataclass(frozen=True)
class NavLink:
    href: str
    label: str
    current: bool


def navigation(here: str, viewer: Caller | None, temporal_ui: str, namespace: str) -> list[NavLink]:
    """The main menu: what each role works with, then their settings."""
    links: list[tuple[str, str]]
    if viewer is None:
        links = [
            ("/sign-up/employer", "Hire a launcher"),
            ("/sign-up/launcher", "Find paid projects"),
        ]
    elif viewer.employer is not None:
        links = [("/dashboard", "Dashboard")]
        if rulebook.member_may(viewer.actor, OrgRight.POST):
            links.append(("/internships/new", "Post an internship"))
        if rulebook.member_may(viewer.actor, OrgRight.CARD):
            links.append(("/card", "Card"))
        if rulebook.member_may(viewer.actor, OrgRight.MONEY):
            links.append(("/billing", "Billing"))
        links.append(("/organisation", "Organisation"))
    elif viewer.launcher is not None:
        links = [("/dashboard", "My work"), ("/postings", "Find internships")]
        links += [("/payouts", "Payouts"), (f"/launchers/{viewer.launcher.id}", "Portfolio")]
    else:
        links = [
            ("/ops", "Ops queue"),
            ("/ops/internships", "All internships"),
            (f"{temporal_ui}/namespaces/{namespace}/workflows", "Temporal UI"),
        ]
    if viewer is not None:
        links.append(("/settings", "Settings"))
    return [NavLink(href, label, href == here) for href, label in links]


def signed_in_as(viewer: Caller | None) -> str:
    if viewer is None:
        return ""
    if viewer.employer is not None and viewer.member is not None:
        return f"{viewer.member.name} · {viewer.employer.company}"
    if viewer.launcher is not None:
        return viewer.launcher.name
    return "Ops team"


def page(
    request: Request, viewer: Caller | None, context: PageContext, status: int = 200
) -> HTMLResponse:
    """`context.template` rendered with the context's fields and what every page gets: who is
    signed in (`viewer`, `signed_in_as`, `nav`), the CSRF token and a one-time key for its
    forms, the messages left for it, where the Temporal UI is, and the zone its moments are
    written in (`reader_zone`, read by the `when` filter)."""
    settings = request.app.state.settings
    temporal_ui = settings.temporal_ui_url.rstrip("/")
    html = ENV.get_template(f"web/{context.template}").render(
        request=request,
        viewer=viewer,
        signed_in_as=signed_in_as(viewer),
        nav=navigation(request.url.path, viewer, temporal_ui, settings.temporal_namespace),
        csrf=session.csrf_token(request),
        csrf_field=session.CSRF_FIELD,
        # A fresh one-time key per rendered form: a form sent twice (a double click, a resend)
        # acts once.
        form_key=session.form_key(request),
        flashes=session.take_flashes(request),
        temporal_ui=temporal_ui,
        namespace=settings.temporal_namespace,
        reader_zone=reader_zone(viewer, settings.ops_time_zone),
        **{f.name: getattr(context, f.name) for f in fields(context)},  # type: ignore[arg-type]
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
    viewer = session.maybe_viewer(request)
    return page(
        request,
        viewer,
        ErrorPage(
            title=titles.get(status, "Something went wrong"),
            message=message
            if status != 404
            else "There is nothing here, or it isn't yours to see.",
            **_switch_account(request, viewer, status),
        ),
        status,
    )


def _switch_account(request: Request, viewer: Caller | None, status: int) -> dict[str, str]:
    """On a page not found for a signed-in viewer (a link emailed to another of their
    accounts, say): who they are signed in as, and this page to come back to as another."""
    if status != 404 or viewer is None or request.method not in ("GET", "HEAD"):
        return {}
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {"signed_in_as_account": session.account_label(viewer), "switch_to": here}


@dataclass(frozen=True)
class ErrorPage(PageContext):
    """A refusal or failure, and what to do about it; on a page not found for a signed-in
    viewer, who they are signed in as (`signed_in_as_account`) and the form that signs them out
    and back in to come back to `switch_to`."""

    template: ClassVar[str] = "error.html"
    title: str
    message: str
    signed_in_as_account: str = ""
    switch_to: str = ""
