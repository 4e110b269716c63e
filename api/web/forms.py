"""Forms as the pages receive them: the CSRF check, and validation problems per field."""

from __future__ import annotations

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.web import session

# Field name -> what to fix, shown beside the field.
Problems = dict[str, str]

# Fields every form carries that are not the request itself.
FORM_FIELDS = (session.CSRF_FIELD, "form_key", session.NEXT)


async def read_form(request: Request) -> FormData:
    """The form, once its CSRF token matched this session's."""
    form = await request.form()
    session.check_csrf(request, form.get(session.CSRF_FIELD))
    return form


def fields(form: FormData) -> dict[str, str]:
    """The request's own fields, empty ones left out (so optional fields take defaults)."""
    return {k: str(v) for k, v in form.items() if k not in FORM_FIELDS and isinstance(v, str) and v}


def problems_of(err: ValidationError) -> Problems:
    found: Problems = {}
    for e in err.errors():
        field = str(e["loc"][0]) if e["loc"] else "form"
        found.setdefault(field, e["msg"].removeprefix("Value error, "))
    return found
