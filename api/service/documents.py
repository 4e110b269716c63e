"""Receipts, credit notes and statements as their readers see them (`core.documents` issues
them; `core.rulebook.may_read_document` says who reads which): the lists of the Billing and
Payouts pages and `GET /v1/receipts`, one document, and a launcher's yearly earnings."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import Session

from api import schemas
from core import rulebook
from core.db import STATEMENT, Document
from core.documents import TITLES, display_number
from core.formats import format_money
from core.internship import Actor, Role
from core.rulebook import OrgRight

MAX_PAGE = 100
MAX_ID = 2**31 - 1  # the largest id an integer column holds


def readable_by(actor: Actor) -> ColumnElement[bool]:
    """The documents `actor` may read, as SQL (the rulebook's rule over many rows)."""
    if actor.role == Role.OPS:
        return true()
    if actor.role == Role.EMPLOYER:
        if not rulebook.member_may(actor, OrgRight.MONEY):
            return false()
        return Document.employer_id == actor.id
    if actor.role == Role.LAUNCHER:
        return (Document.launcher_id == actor.id) & (Document.kind == STATEMENT)
    return false()


@dataclass
class Page:
    rows: list[Document]
    next_cursor: str | None


def page(db: Session, actor: Actor, limit: int, cursor: str | None) -> Page:
    """Newest first; the cursor is the last id of the previous page."""
    query = select(Document).where(readable_by(actor))
    # A cursor past the largest id (no page gave it) bounds nothing; Postgres refuses to
    # compare the integer column with a number it can't hold.
    if cursor and int(cursor) <= MAX_ID:
        query = query.where(Document.id < int(cursor))
    rows = list(db.scalars(query.order_by(Document.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, str(rows[-1].id) if more and rows else None)


def readable(db: Session, actor: Actor, document_id: int) -> Document | None:
    """The document, if `actor` may read it (None: as if it did not exist)."""
    doc = db.get(Document, document_id)
    if doc is None or not rulebook.may_read_document(
        actor, doc.employer_id, doc.kind, doc.launcher_id
    ):
        return None
    return doc


def document_out(doc: Document, public_base_url: str) -> schemas.DocumentOut:
    url = f"{public_base_url.rstrip('/')}/documents/{doc.id}"
    return schemas.DocumentOut(
        id=doc.id,
        kind=doc.kind,  # type: ignore[arg-type]
        number=doc.number,
        display_number=display_number(doc.kind, doc.number),
        amount_cents=doc.amount_cents,
        currency=doc.currency,
        issued_at=doc.issued_at,
        employer_id=doc.employer_id,
        internship_id=doc.internship_id,
        internship_title=doc.internship_title,
        launcher_id=doc.launcher_id,
        billing_name=doc.billing_name,
        billing_address=doc.billing_address,
        tax_id=doc.tax_id,
        billing_email=doc.billing_email,
        launcher_name=doc.launcher_name,
        stripe_id=doc.stripe_id,
        url=url,
        pdf_url=f"{url}.pdf",
    )


def statements(db: Session, launcher_id: str, year: int | None = None) -> list[Document]:
    """A launcher's payout statements, newest first (of one calendar year, UTC, if given)."""
    query = select(Document).where(Document.launcher_id == launcher_id, Document.kind == STATEMENT)
    if year is not None:
        start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        query = query.where(Document.issued_at >= start, Document.issued_at < end)
    return list(db.scalars(query.order_by(Document.issued_at.desc(), Document.id.desc())))


def _oldest_first(rows: list[Document]) -> list[Document]:
    return sorted(rows, key=lambda d: (d.issued_at, d.id))


def earnings_totals(rows: list[Document]) -> dict[str, int]:
    """What the statements add up to, in cents per currency, currencies in order."""
    totals: dict[str, int] = {}
    for doc in rows:
        totals[doc.currency] = totals.get(doc.currency, 0) + doc.amount_cents
    return dict(sorted(totals.items()))


def earnings_csv(rows: list[Document]) -> str:
    """A year's payouts as CSV, oldest first, one line per statement and a total per currency."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "statement", "internship", "organisation", "amount", "currency"])
    for doc in _oldest_first(rows):
        writer.writerow(
            [
                doc.issued_at.astimezone(UTC).date().isoformat(),
                display_number(doc.kind, doc.number),
                _cell(doc.internship_title),
                _cell(doc.billing_name),
                f"{doc.amount_cents / 100:.2f}",
                doc.currency.upper(),
            ]
        )
    for currency, cents in earnings_totals(rows).items():
        writer.writerow(["total", "", "", "", f"{cents / 100:.2f}", currency.upper()])
    return out.getvalue()


def earnings_out(rows: list[Document], year: int, public_base_url: str) -> schemas.EarningsOut:
    """The same year's payouts as the CSV, as JSON."""
    return schemas.EarningsOut(
        year=year,
        statements=[document_out(d, public_base_url) for d in _oldest_first(rows)],
        totals=[
            schemas.EarningsTotal(currency=c, amount_cents=cents)
            for c, cents in earnings_totals(rows).items()
        ],
    )


def _cell(text: str) -> str:
    """A spreadsheet never runs what someone typed: a leading formula character is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def label(doc: Document) -> str:
    """ "Receipt R-000012 · $400.00" for lists."""
    return (
        f"{TITLES[doc.kind]} {display_number(doc.kind, doc.number)} · "
        f"{format_money(doc.amount_cents, doc.currency)}"
    )
