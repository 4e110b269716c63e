"""Receipts, credit notes and statements: issued when money moves, numbered per organisation,
rendered as a page and as a PDF from one template (core/templates/documents/document.html).

The projection issues them (`issue_documents`) in the transaction that records the event, from
the workflow's `Money`: a receipt for the charge, a credit note for each refund and a statement
for each payout to the launcher. A document's Stripe id is unique, and the projection records
each event once, so a retried or replayed event issues nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db import (
    CREDIT_NOTE,
    RECEIPT,
    STATEMENT,
    Document,
    DocumentCounter,
    Employer,
    Launcher,
)
from core.emails import TEMPLATES
from core.formats import format_money
from core.internship import InternshipState

# What each kind is called, and the prefix of its number ("R-000042").
TITLES = {RECEIPT: "Receipt", CREDIT_NOTE: "Credit note", STATEMENT: "Payout statement"}
PREFIXES = {RECEIPT: "R", CREDIT_NOTE: "CN", STATEMENT: "S"}
# Who issues the documents (the platform, for the organisation's fees and its refunds; for a
# payout, on the organisation's behalf).
ISSUER = "Micro-internships"


def display_number(kind: str, number: int) -> str:
    """The number as printed: the kind's prefix and the organisation's sequence number."""
    return f"{PREFIXES[kind]}-{number:06d}"


def next_number(db: Session, employer_id: str) -> int:
    """The organisation's next document number, taken in `db`'s transaction.

    The counter row is made at the first document (a concurrent first one waits for it and
    then finds it); the increment locks the row until the transaction ends, so concurrent
    issuers take consecutive numbers, and a rollback gives its number back."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.execute(
        insert(DocumentCounter)
        .values(employer_id=employer_id, last_number=0)
        .on_conflict_do_nothing(index_elements=["employer_id"])
    )
    taken = db.execute(
        update(DocumentCounter)
        .where(DocumentCounter.employer_id == employer_id)
        .values(last_number=DocumentCounter.last_number + 1)
        .returning(DocumentCounter.last_number)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(taken)


def issue(
    db: Session,
    *,
    kind: str,
    employer: Employer,
    internship_id: str,
    internship_title: str,
    launcher: Launcher | None,
    stripe_id: str,
    amount_cents: int,
    currency: str,
    at: datetime,
) -> Document:
    """Number and add one document, with the parties as they are now (in `db`'s transaction)."""
    doc = Document(
        employer_id=employer.id,
        internship_id=internship_id,
        launcher_id=launcher.id if launcher else None,
        kind=kind,
        number=next_number(db, employer.id),
        amount_cents=amount_cents,
        currency=currency,
        issued_at=at,
        stripe_id=stripe_id,
        internship_title=internship_title,
        billing_name=employer.billing_name or employer.company,
        billing_address=employer.billing_address or "",
        tax_id=employer.tax_id or "",
        billing_email=employer.notify_email or employer.email,
        launcher_name=launcher.name if launcher else "",
        launcher_email=launcher.email if launcher else "",
    )
    db.add(doc)
    db.flush()
    return doc


def issue_documents(db: Session, s: InternshipState, at: datetime) -> list[Document]:
    """The documents the state's money calls for that the internship doesn't have yet: a
    receipt for the charge, a credit note for what was refunded since the last one, a
    statement for what was paid since the last one. Catches up on anything an earlier event
    could not issue, and issues nothing twice (a Stripe id has one document)."""
    m, p = s.money, s.posting
    owed = [
        (RECEIPT, m.payment_intent_id, m.charged_cents),
        (CREDIT_NOTE, m.refund_id, m.refunded_cents),
        (STATEMENT, m.transfer_id, m.paid_cents),
    ]
    if not any(stripe_id and cents for _, stripe_id, cents in owed):
        return []
    existing = list(db.scalars(select(Document).where(Document.internship_id == p.internship_id)))
    known = {d.stripe_id for d in existing}
    issued: list[Document] = []
    for kind, stripe_id, total in owed:
        covered = sum(d.amount_cents for d in existing if d.kind == kind)
        if not stripe_id or stripe_id in known or total <= covered:
            continue
        employer = db.get(Employer, p.employer_id)
        if employer is None:
            raise LookupError(f"employer {p.employer_id} not found")
        launcher = db.get(Launcher, s.launcher_id) if s.launcher_id else None
        issued.append(
            issue(
                db,
                kind=kind,
                employer=employer,
                internship_id=p.internship_id,
                internship_title=p.title,
                launcher=launcher,
                stripe_id=stripe_id,
                amount_cents=total - covered,
                currency=p.currency,
                at=at,
            )
        )
    return issued


# ---------------------------------------------------------------- rendering

_env = Environment(
    loader=FileSystemLoader(TEMPLATES / "documents"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


def document_context(doc: Document) -> dict[str, Any]:
    """What the template shows: the document as issued, formatted."""
    return {
        "id": doc.id,
        "kind": doc.kind,
        "title": TITLES[doc.kind],
        "number": display_number(doc.kind, doc.number),
        "amount": format_money(doc.amount_cents, doc.currency),
        "issued_on": doc.issued_at.astimezone(UTC).strftime("%b %d, %Y"),
        "internship_id": doc.internship_id,
        "internship_title": doc.internship_title,
        "issuer": ISSUER,
        "billing_name": doc.billing_name,
        "billing_address": doc.billing_address,
        "tax_id": doc.tax_id,
        "billing_email": doc.billing_email,
        "launcher_name": doc.launcher_name,
        "launcher_email": doc.launcher_email,
        "stripe_id": doc.stripe_id,
    }


def render_html(doc: Document, *, page_links: bool = False) -> str:
    """The document as HTML: the page (with links to the PDF and back) or the PDF's source."""
    template = _env.get_template("document.html")
    return template.render(doc=document_context(doc), page_links=page_links)


def render_pdf(doc: Document) -> bytes:
    """The document as a PDF, from the same template. Blocking (CPU, fonts): call it from a
    thread, never on the event loop."""
    from PIL import ImageFile
    from weasyprint import HTML  # a heavy import, needed only here

    # Importing weasyprint tells Pillow, process-wide, to load truncated images; the profile
    # images' checks (core/images.py) rely on Pillow refusing them, and documents carry none.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    pdf: bytes = HTML(string=render_html(doc)).write_pdf()
    return pdf


def filename(doc: Document) -> str:
    return f"{display_number(doc.kind, doc.number)}.pdf"
