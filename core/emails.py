"""Email rendering: the templates folder, the Jinja2 renderer and what every email knows.

Rendering happens where an email is queued (the projection, in the same transaction as its
outbox row; the proof-of-inbox emails; the relay's alert to ops); sending is the worker's outbox
relay's job (worker/outbox.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.db import Internship
from core.formats import format_money, when
from core.internship import UpcomingDeadline

# core/templates/ (email/ and web/, with web/static/): package data of the installed
# distribution, found through the core package wherever it is installed (a folder on disk: the
# wheel installs unzipped, and Jinja2's and Starlette's loaders read folders).
TEMPLATES = Path(str(resources.files("core") / "templates"))


def internship_context(
    *,
    internship_id: str,
    title: str,
    company: str,
    category: str,
    stage: str,
    fee_cents: int,
    currency: str,
    due_at: datetime | None,
    public_base_url: str,
    deadlines: Iterable[UpcomingDeadline] = (),
    zone: tzinfo = UTC,
) -> dict[str, Any]:
    """What every email template knows of the internship it is about. `deadlines`: the
    workflow's upcoming ones (`InternshipState.deadlines`), each kind's moment preformatted,
    so an email says "approved automatically on …" with the timer's own date. Every moment is
    written in the recipient's `zone`, named."""
    return {
        "id": internship_id,
        "title": title,
        "company": company,
        "category": category,
        "stage": stage,
        "fee": format_money(fee_cents, currency),
        "due_at": when(due_at, zone),
        "url": f"{public_base_url.rstrip('/')}/internships/{internship_id}",
        # Stripe's onboarding links expire within minutes; the payouts page makes a fresh one.
        "payouts_url": f"{public_base_url.rstrip('/')}/payouts",
        "deadlines": {d.kind: when(d.at, zone) for d in deadlines},
    }


def row_context(row: Internship, public_base_url: str, zone: tzinfo = UTC) -> dict[str, Any]:
    """`internship_context` of an internship as the projection holds it."""
    return internship_context(
        internship_id=row.id,
        title=row.title,
        company=row.company,
        category=row.category,
        stage=row.stage,
        fee_cents=row.fee_cents,
        currency=row.currency,
        due_at=row.due_at,
        public_base_url=public_base_url,
        zone=zone,
    )


@dataclass
class RenderedEmail:
    subject: str
    text: str
    html: str


class Templates:
    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates change with a deploy, which restarts the process: no stat() per render.
            auto_reload=False,
        )

    def render(self, kind: str, context: dict[str, Any]) -> RenderedEmail:
        text = self.env.get_template(f"email/{kind}.txt")
        subject = "".join(text.blocks["subject"](text.new_context(context))).strip()
        return RenderedEmail(
            subject=" ".join(subject.split()),
            text=text.render(context),
            html=self.env.get_template(f"email/{kind}.html").render(context),
        )
