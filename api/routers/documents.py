"""Receipts, credit notes and statements: the caller's list, and one document as JSON or PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api import schemas
from api.deps import CallerDep, SessionsDep, SettingsDep
from api.errors import ApiError
from api.service import documents
from core import documents as issued
from core import rulebook
from core.db import Document
from core.internship import Role
from core.rulebook import OrgRight

router = APIRouter(tags=["documents"])

Limit = Annotated[int, Query(ge=1, le=documents.MAX_PAGE)]
Cursor = Annotated[
    str | None,
    Query(max_length=18, pattern=r"^[0-9]+$", description="next_cursor of the previous page"),
]
DocumentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PDF = "application/pdf"
CSV = "text/csv; charset=utf-8"


@router.get(
    "/v1/receipts",
    response_model=schemas.DocumentPage,
    summary="My receipts, credit notes and payout statements, newest first",
    description="An organisation's members who read its money (admins, hiring managers, "
    "finance) get its receipts, credit notes and statements; a launcher their payout "
    "statements; ops every document.",
)
def list_documents(
    caller: CallerDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> schemas.DocumentPage:
    actor = caller.actor
    if actor.role == Role.EMPLOYER and not rulebook.member_may(actor, OrgRight.MONEY):
        raise ApiError(
            403, "forbidden", rulebook.lacking(OrgRight.MONEY), {"needs": OrgRight.MONEY.value}
        )
    with sessions() as db:
        found = documents.page(db, actor, limit, cursor)
    return schemas.DocumentPage(
        items=[documents.document_out(d, settings.public_base_url) for d in found.rows],
        next_cursor=found.next_cursor,
    )


@router.get(
    "/v1/documents/{document_id}",
    response_model=schemas.DocumentOut,
    summary="One receipt, credit note or statement (JSON, or the PDF with Accept: application/pdf)",
    responses={
        200: {
            "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The document; as a PDF attachment when asked for one",
        }
    },
)
async def read_document(
    request: Request,
    document_id: DocumentId,
    caller: CallerDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> schemas.DocumentOut | Response:
    def load() -> Document | None:
        with sessions() as db:
            return documents.readable(db, caller.actor, document_id)

    doc = await run_in_threadpool(load)
    if doc is None:
        raise ApiError(404, "not_found", f"No document {document_id} of yours")
    if wants_pdf(request.headers.get("accept", "")):
        return await pdf_response(doc)
    return documents.document_out(doc, settings.public_base_url)


def earnings_response(rows: list[Document], year: int) -> Response:
    """A launcher's earnings of one year as a CSV attachment (the Payouts page's and the
    API's)."""
    return Response(
        documents.earnings_csv(rows),
        media_type=CSV,
        headers={
            "Content-Disposition": f'attachment; filename="earnings-{year}.csv"',
            "Cache-Control": "private, no-store",
        },
    )


def wants_json(accept: str) -> bool:
    """Whether the Accept header asks for JSON before the CSV (the CSV is the default)."""
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    json, csv = "application/json", "text/csv"
    return json in kinds and (csv not in kinds or kinds.index(json) < kinds.index(csv))


def wants_pdf(accept: str) -> bool:
    """Whether the Accept header asks for the PDF before JSON."""
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return PDF in kinds and ("application/json" not in kinds or kinds.index(PDF) == 0)


async def pdf_response(doc: Document) -> Response:
    """The PDF (rendered on a worker thread: it takes a moment), as an attachment."""
    data = await run_in_threadpool(issued.render_pdf, doc)
    return Response(
        data,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{issued.filename(doc)}"',
            "Cache-Control": "private, no-store",
        },
    )
