"""The Billing page (an organisation's receipts, credit notes and statements, and its billing
details: members who read its money see it, admins change the details), each document's page
and PDF, and a launcher's yearly earnings (CSV)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, ClassVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import schemas
from api.deps import Caller, SessionsDep
from api.errors import not_found
from api.routers.documents import earnings_response, pdf_response
from api.service import documents, reads
from api.web import session
from api.web.forms import Problems, problems_of, read_form
from api.web.render import PageContext, page, redirect
from api.web.session import SignedInLauncher, SignedInProfileEditor, Viewer, employer_with
from core import organisation, rulebook
from core.db import Document, Employer
from core.documents import TITLES, display_number, render_html
from core.rulebook import OrgRight

router = APIRouter(include_in_schema=False)

PAGE = "/billing"
PER_PAGE = 50
SignedInMoney = Annotated[Caller, Depends(employer_with(OrgRight.MONEY))]
DocumentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@dataclass(frozen=True)
class DocumentRow:
    id: int
    title: str
    number: str
    issued_at: datetime
    internship_id: str
    internship_title: str
    amount_cents: int
    currency: str


def rows_of(docs: list[Document]) -> list[DocumentRow]:
    return [
        DocumentRow(
            d.id,
            TITLES[d.kind],
            display_number(d.kind, d.number),
            d.issued_at,
            d.internship_id,
            d.internship_title,
            d.amount_cents,
            d.currency,
        )
        for d in docs
    ]


@dataclass(frozen=True)
class BillingPage(PageContext):
    """The organisation's documents, newest first (a page of them), and its billing details
    (a form for admins)."""

    template: ClassVar[str] = "billing.html"
    documents: list[DocumentRow]
    next_cursor: str | None
    can_edit: bool
    billing_name: str
    billing_address: str
    tax_id: str
    company: str
    errors: Problems = field(default_factory=dict)


def _billing_page(
    request: Request,
    viewer: Caller,
    sessions: SessionsDep,
    before: str | None,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: Problems | None = None,
) -> Response:
    assert viewer.employer is not None
    with sessions() as db:
        found = documents.page(db, viewer.actor, PER_PAGE, before)
        org = db.get(Employer, viewer.employer.id)
    assert org is not None
    shown = typed or {
        "billing_name": org.billing_name or "",
        "billing_address": org.billing_address or "",
        "tax_id": org.tax_id or "",
    }
    return page(
        request,
        viewer,
        BillingPage(
            documents=rows_of(found.rows),
            next_cursor=found.next_cursor,
            can_edit=rulebook.member_may(viewer.actor, OrgRight.PROFILE),
            company=org.company,
            errors=errors or {},
            **shown,
        ),
        status,
    )


@router.get(PAGE, response_class=HTMLResponse)
async def billing(
    request: Request,
    viewer: SignedInMoney,
    sessions: SessionsDep,
    before: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]+$")] = None,
) -> Response:
    return await run_in_threadpool(_billing_page, request, viewer, sessions, before)


@router.post(f"{PAGE}/details", response_class=HTMLResponse)
async def billing_details(
    request: Request, editor: SignedInProfileEditor, sessions: SessionsDep
) -> Response:
    form = await read_form(request)
    typed = {f: str(form.get(f) or "").strip() for f in organisation.BILLING_FIELDS}
    assert editor.employer is not None
    try:
        schemas.OrganisationIn.model_validate(typed)
    except ValidationError as err:
        return await run_in_threadpool(
            _billing_page, request, editor, sessions, None, 422, typed, problems_of(err)
        )
    await run_in_threadpool(
        lambda: organisation.set_billing_details(sessions, editor.employer.id, **typed)  # type: ignore[union-attr]
    )
    session.flash(request, "Billing details saved: the next receipts and credit notes carry them.")
    return redirect(f"{PAGE}#details-heading")


# ---------------------------------------------------------------- one document


async def _readable(sessions: SessionsDep, viewer: Caller, document_id: int) -> Document:
    doc = await reads.run(sessions, documents.readable, viewer.actor, document_id)
    if doc is None:
        raise not_found("document")
    return doc


@router.get("/documents/{document_id}.pdf")
async def document_pdf(document_id: DocumentId, viewer: Viewer, sessions: SessionsDep) -> Response:
    return await pdf_response(await _readable(sessions, viewer, document_id))


@router.get("/documents/{document_id}", response_class=HTMLResponse)
async def document_page(document_id: DocumentId, viewer: Viewer, sessions: SessionsDep) -> Response:
    doc = await _readable(sessions, viewer, document_id)
    return HTMLResponse(render_html(doc, page_links=True), headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- a launcher's earnings


@router.get("/payouts/earnings-{year}.csv")
async def earnings(
    year: Annotated[int, Path(ge=2000, le=2100)],
    launcher: SignedInLauncher,
    sessions: SessionsDep,
) -> Response:
    rows = await reads.run(sessions, documents.statements, launcher.id, year)
    return earnings_response(rows, year)


def earning_years(statements: list[Document]) -> list[int]:
    """The years with a payout, newest first, and this year."""
    years = {d.issued_at.astimezone(UTC).year for d in statements}
    return sorted(years | {datetime.now(UTC).year}, reverse=True)
