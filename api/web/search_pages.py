"""Searching from the pages: the postings page's search form (read here, shown by
`api.web.pages.postings`) and ops' search of every internship (`/ops/internships`).

Both are GET forms: the search is in the address (a link or Back shows it again) and in the
form as it was typed; a value that can't be used is said beside its field and the page answers
422 with the values kept. The search itself is `api.service.search`, as for the JSON API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import ClassVar, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import QueryParams

from api import schemas
from api.deps import SessionsDep
from api.errors import ApiError
from api.service import reads, search
from api.web.forms import Problems
from api.web.render import PageContext, page
from api.web.session import OpsViewer
from core.internship import Stage

router = APIRouter(include_in_schema=False)

CATEGORIES: list[str] = list(get_args(schemas.Category))
# The fields of the postings page's search form.
POSTINGS_FIELDS = ("q", "category", "skills", "fee_min", "fee_max", "duration_max")
# A criterion's problem is shown beside the form's field it came from.
POSTINGS_FIELD_OF = {"fee_min_cents": "fee_min", "fee_max_cents": "fee_max"}
POSTINGS_FIELD_OF |= {"duration_max_days": "duration_max"}
MAX_SKILLS = 20


def _typed(params: QueryParams, names: tuple[str, ...]) -> dict[str, str]:
    """The form's fields as typed (bounded), for the form and the links to other pages."""
    return {n: params.get(n, "").strip()[:320] for n in names if params.get(n, "").strip()}


def _cents(value: str) -> int | None:
    try:
        amount = Decimal(value.replace(",", "").replace("$", "").strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        return None
    return int(amount * 100) if amount <= 100_000 else None


def postings_search(params: QueryParams) -> tuple[search.Criteria, dict[str, str], Problems]:
    """The postings page's search as typed: its criteria, the values to show in the form
    again and a problem beside each field that can't be used."""
    values = _typed(params, POSTINGS_FIELDS)
    if "skills" not in values and params.get("skill", "").strip():  # the old form's name
        values["skills"] = params["skill"].strip()[:320]
    errors: Problems = {}
    category = values.get("category", "")
    if category and category not in CATEGORIES:
        errors["category"] = "Choose one of the categories in the list"
    skills = tuple(dict.fromkeys(s.strip().lower() for s in values.get("skills", "").split(",")))
    skills = tuple(s for s in skills if s)
    if any(len(s) > 64 for s in skills):
        errors["skills"] = "Each skill is at most 64 characters; separate skills with commas"
    elif len(skills) > MAX_SKILLS:
        errors["skills"] = f"Search for at most {MAX_SKILLS} skills at once"
    fees: dict[str, int | None] = {}
    for name in ("fee_min", "fee_max"):
        fees[name] = _cents(values[name]) if name in values else None
        if name in values and fees[name] is None:
            errors[name] = "Enter an amount in dollars, like 200 or 250.50"
    longest = None
    if "duration_max" in values:
        text = values["duration_max"]
        longest = int(text) if text.isdigit() and 0 < int(text) <= 365 else None
        if longest is None:
            errors["duration_max"] = "Enter a number of days, like 14"
    wanted = search.Criteria(
        words=values.get("q", "")[:200],
        category=category if category in CATEGORIES else None,
        skills=skills if "skills" not in errors else (),
        fee_min_cents=fees["fee_min"],
        fee_max_cents=fees["fee_max"],
        duration_max_days=longest,
    )
    for criterion, problem in search.problems(wanted).items():
        errors.setdefault(POSTINGS_FIELD_OF.get(criterion, criterion), problem)
    return wanted, values, errors


# ---------------------------------------------------------------- ops' search

OPS_FIELDS = ("q", "stage", "posted_from", "posted_to")
# How many internships one page of ops' search shows.
OPS_PAGE_ROWS = 50


@dataclass(frozen=True)
class OpsSearchPage(PageContext):
    """Every internship, newest first, found by id, title, a party's name or email, stage and
    the days it was posted; a page at a time."""

    template: ClassVar[str] = "ops_internships.html"
    rows: list[search.OpsRow]
    values: dict[str, str]  # the search as typed
    errors: Problems
    stages: list[str]
    searched: bool  # any criterion given
    next_url: str  # the next page ("" on the last)
    first_url: str  # the first page, from a later one ("" on the first)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@router.get("/ops/internships", response_class=HTMLResponse)
async def ops_internships(request: Request, viewer: OpsViewer, sessions: SessionsDep) -> Response:
    params = request.query_params
    values = _typed(params, OPS_FIELDS)
    errors: Problems = {}
    stage = None
    if "stage" in values:
        try:
            stage = Stage(values["stage"])
        except ValueError:
            errors["stage"] = "Choose one of the stages in the list"
    days: dict[str, date | None] = {}
    for name in ("posted_from", "posted_to"):
        days[name] = _day(values[name]) if name in values else None
        if name in values and days[name] is None:
            errors[name] = "Enter a date like 2026-12-31"
    wanted = search.Criteria(
        anything=values.get("q", ""),
        stage=stage,
        posted_from=days["posted_from"],
        posted_to=days["posted_to"],
    )
    for criterion, problem in search.problems(wanted).items():
        errors.setdefault(criterion, problem)
    rows: list[search.OpsRow] = []
    next_cursor = None
    cursor = params.get("cursor", "")[:200] or None
    if not errors:
        try:
            rows, next_cursor = await reads.run(
                sessions, search.ops_page, viewer.actor, wanted, OPS_PAGE_ROWS, cursor
            )
        except ApiError as err:  # a page link from before, edited or cut
            errors["form"] = "That page link can't be used: search again from the first page"
            if err.details.get("field") != "cursor":
                raise
    here = request.url.path
    context = OpsSearchPage(
        rows=rows,
        values=values,
        errors=errors,
        stages=[s.value for s in Stage],
        searched=not wanted.is_empty(),
        next_url=f"{here}?{urlencode({**values, 'cursor': next_cursor})}" if next_cursor else "",
        first_url=f"{here}?{urlencode(values)}" if cursor else "",
    )
    return page(request, viewer, context, 422 if errors else 200)
