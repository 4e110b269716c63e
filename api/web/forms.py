"""Forms as the pages receive them: the CSRF check, and validation problems per field, in plain
words, to show beside the field that needs fixing (with what was typed kept in it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotated_types import MaxLen
from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.datastructures import FormData

from api import schemas
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
        name = str(e["loc"][0]) if e["loc"] else "form"
        found.setdefault(name, plain_words(e))
    return found


def plain_words(e: ErrorDetails) -> str:
    """What to fix, as a person would say it (not the validation library's wording)."""
    ctx: dict[str, Any] = e.get("ctx") or {}
    typed = e.get("input")
    item = len(e["loc"]) > 1 and isinstance(e["loc"][1], int)  # one entry of a list field
    match e["type"]:
        case "missing":
            return "Fill this in."
        case "string_too_long":
            limit = f"{ctx['max_length']:,} characters or fewer"
            if item:
                return f"Keep each one to {limit}: “{str(typed)[:20]}…” has {len(str(typed)):,}."
            return f"Keep this to {limit}: it has {len(str(typed)):,}."
        case "string_too_short":
            return "Fill this in." if ctx.get("min_length") == 1 else "This is too short."
        case "too_long":
            return f"Give at most {ctx['max_length']} of these."
        case "greater_than_equal":
            return f"Enter {ctx['ge']} or more."
        case "less_than_equal":
            return f"Enter {ctx['le']} or less."
        case "greater_than":
            return f"Enter more than {ctx['gt']}."
        case "int_parsing" | "int_type" | "int_from_float":
            return "Enter a whole number."
        case "url_parsing" | "url_scheme" | "url_type" | "url_syntax_violation":
            return "Enter a full link, starting with https://"
        case "literal_error" | "enum":
            return "Choose one of the options."
        case "datetime_parsing" | "datetime_type" | "datetime_from_date_parsing":
            return "Enter a date, like 2027-01-31."
    message = e["msg"].removeprefix("Value error, ")
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


@dataclass(frozen=True)
class Typed:
    """One step's form as it was sent and refused: shown again with what was typed in it and
    each problem beside its field. `step` names the form (an action, e.g. `applications`)."""

    step: str = ""
    values: dict[str, str] = field(default_factory=dict)
    errors: Problems = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        """What was written in the form's free-text fields (not its choices)."""
        return [text for name, text in self.values.items() if name in LIMITS or name == "url"]

    def of(self, step: str) -> Typed:
        """This, if it is `step`'s form; else an empty form."""
        return self if step == self.step else NOTHING_TYPED


NOTHING_TYPED = Typed()


def max_length(model: type[BaseModel], name: str) -> int:
    """The longest text `model` takes in field `name` (for a list, in each item)."""
    annotation: Any = model.model_fields[name]
    metadata = list(annotation.metadata)
    if annotation.annotation is not None and getattr(annotation.annotation, "__origin__", None):
        item = annotation.annotation.__args__[0]
        metadata = list(getattr(item, "__metadata__", ()))
    for meta in metadata:
        if isinstance(meta, MaxLen):
            return int(meta.max_length)
        if hasattr(meta, "metadata"):  # a FieldInfo inside Annotated
            for inner in meta.metadata:
                if isinstance(inner, MaxLen):
                    return int(inner.max_length)
    raise LookupError(f"{model.__name__}.{name} has no length limit")


# The longest text each form field takes, told beside the field before anything is sent.
LIMITS = {
    "title": max_length(schemas.InternshipIn, "title"),
    "description": max_length(schemas.InternshipIn, "description"),
    "skill": max_length(schemas.InternshipIn, "skills"),
    "pitch": max_length(schemas.ApplicationIn, "pitch"),
    "note": max_length(schemas.SubmissionIn, "note"),
    "feedback": max_length(schemas.ReviewIn, "feedback"),
    "reason": max_length(schemas.DisputeIn, "reason"),
    "comment": max_length(schemas.FeedbackIn, "comment"),
    "name": max_length(schemas.EmployerIn, "name"),
}
