"""Request and response models at the edge of the API (v1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, HttpUrl


def _strip(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _skills(values: list[str]) -> list[str]:
    cleaned = sorted({v.strip().lower() for v in values if v.strip()})
    if any(len(v) > 64 for v in cleaned):
        raise ValueError("each skill must be at most 64 characters")
    return cleaned


Text = Annotated[str, Field(max_length=2000), AfterValidator(_strip)]
Name = Annotated[str, Field(max_length=200), AfterValidator(_strip)]
Skills = Annotated[list[str], Field(max_length=20), AfterValidator(_skills)]
Category = Literal["sales", "marketing", "technology", "hr", "finance", "other"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


PaymentMethodId = Annotated[
    str, Field(pattern=r"^pm_[A-Za-z0-9_]+$", max_length=100, examples=["pm_card_visa"])
]


class EmployerIn(Strict):
    name: Name
    email: EmailStr
    company: Name
    payment_method: PaymentMethodId


class PaymentMethodIn(Strict):
    payment_method: PaymentMethodId


class PaymentMethodOut(BaseModel):
    payment_method: str


class EmployerOut(BaseModel):
    id: str
    api_token: str


class LauncherIn(Strict):
    name: Name
    email: EmailStr
    skills: Skills = []


class LauncherOut(BaseModel):
    id: str
    api_token: str
    onboarding_url: str


class OnboardingLinkOut(BaseModel):
    onboarding_url: str


class InternshipIn(Strict):
    title: Name
    description: Annotated[str, Field(max_length=10000), AfterValidator(_strip)]
    category: Category
    skills: Skills = []
    estimated_hours: int = Field(ge=5, le=40)
    fee_cents: int = Field(gt=0, le=10_000_000)
    currency: Literal["usd", "eur", "gbp"] = "usd"
    duration_days: int = Field(ge=7, le=30)


class ApplicationIn(Strict):
    pitch: Text


class SelectionIn(Strict):
    launcher_id: Annotated[str, Field(min_length=1, max_length=40)]


class SubmissionIn(Strict):
    url: HttpUrl
    note: Annotated[str, Field(max_length=2000)] = ""


class ReviewIn(Strict):
    decision: Literal["approve", "request_revision"]
    feedback: Annotated[str, Field(max_length=2000)] = ""


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as err:  # e.g. 9999-12-31T23:59-23:59 is past year 9999 in UTC
        raise ValueError("must be a date that exists in UTC") from err


class ExtensionIn(Strict):
    due_at: Annotated[AwareDatetime, AfterValidator(_utc)]


class CancellationIn(Strict):
    reason: Text
    refund: bool = True


class DisputeIn(Strict):
    reason: Text


class ResolutionIn(Strict):
    outcome: Literal["pay_launcher", "split", "refund"]
    launcher_percent: int = Field(default=0, ge=0, le=100)
    note: Annotated[str, Field(max_length=2000)] = ""


class FeedbackIn(Strict):
    rating: int = Field(ge=1, le=5)
    comment: Annotated[str, Field(max_length=2000)] = ""


class InternshipSummary(BaseModel):
    id: str
    title: str
    company: str
    category: str
    skills: list[str]
    stage: str
    estimated_hours: int
    fee_cents: int
    currency: str
    duration_days: int
    due_at: datetime | None
    overdue: bool
    escalation_level: int
    employer_id: str
    launcher_id: str | None
    posted_at: datetime


class InternshipPage(BaseModel):
    items: list[InternshipSummary]
    next_cursor: str | None


class ApplicantOut(BaseModel):
    launcher_id: str
    pitch: str
    applied_at: datetime
    withdrawn: bool


class SubmissionOut(BaseModel):
    round: int
    url: str
    note: str
    submitted_at: datetime


class TimelineOut(BaseModel):
    seq: int
    at: datetime
    stage: str
    event: str
    actor_role: str
    actor_id: str
    note: str


class RatingOut(BaseModel):
    rating: int
    comment: str


class PaymentOut(BaseModel):
    charged_cents: int
    paid_to_launcher_cents: int
    refunded_cents: int


class DisputeOut(BaseModel):
    opened_by: str
    reason: str
    opened_at: datetime
    outcome: str | None
    note: str


class InternshipDetail(BaseModel):
    id: str
    title: str
    description: str
    company: str
    category: str
    skills: list[str]
    estimated_hours: int
    fee_cents: int
    currency: str
    duration_days: int
    employer_id: str
    launcher_id: str | None
    stage: str
    posted_at: datetime
    due_at: datetime | None
    overdue: bool
    escalation_level: int
    revision_rounds: int
    allowed_actions: list[str]
    applicants: list[ApplicantOut]
    submissions: list[SubmissionOut]
    payment: PaymentOut | None
    dispute: DisputeOut | None
    # Each side's rating of the other, shown once both are in or the window has closed.
    ratings: dict[str, RatingOut] | None
    timeline: list[TimelineOut]


class PortfolioItem(BaseModel):
    internship_id: str
    title: str
    company: str
    category: str
    completed_at: datetime
    rating: int | None
    comment: str | None


class Portfolio(BaseModel):
    launcher_id: str
    name: str
    skills: list[str]
    completed: list[PortfolioItem]
    average_rating: float | None
