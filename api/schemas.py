"""Request and response models at the edge of the API (v1)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from core import zones
from core.db import LINK_LENGTH, PROFILE_LINE_LENGTH, PROFILE_TEXT_LENGTH
from core.internship import MemberRole

# Control characters (C0, DEL, C1) and lone surrogates: never valid text, and a NUL is refused
# by Postgres. Multi-line fields keep tab and newline (a CRLF from a form becomes LF).
_SURROGATES = r"\ud800-\udfff"
_C0_C1 = r"\x00-\x1f\x7f-\x9f"
_C0_C1_BUT_TAB_NEWLINE = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_BAD_LINE = re.compile(f"[{_C0_C1}{_SURROGATES}]")
_BAD_TEXT = re.compile(f"[{_C0_C1_BUT_TAB_NEWLINE}{_SURROGATES}]")
# The same rules as JSON Schema patterns, so the OpenAPI document declares what is enforced.
# (Without the surrogate range, which Unicode-aware regex engines refuse; JSON text can't
# carry lone surrogates validly anyway, and the validators above still refuse them.)
_VISIBLE = rf"[^\s{_C0_C1}]"
LINE_PATTERN = f"^[^{_C0_C1}]*$"
FILLED_LINE_PATTERN = f"^[^{_C0_C1}]*{_VISIBLE}[^{_C0_C1}]*$"
TEXT_PATTERN = f"^[^{_C0_C1_BUT_TAB_NEWLINE}]*$"
FILLED_TEXT_PATTERN = f"^[^{_C0_C1_BUT_TAB_NEWLINE}]*{_VISIBLE}[^{_C0_C1_BUT_TAB_NEWLINE}]*$"


def _refuse(bad: re.Pattern[str], value: str) -> str:
    if found := bad.search(value):
        raise ValueError(
            f"must not contain control characters (U+{ord(found.group()):04X} at position "
            f"{found.start()})"
        )
    return value


def _line(value: str) -> str:
    return _refuse(_BAD_LINE, value).strip()


def _text(value: str) -> str:
    return _refuse(_BAD_TEXT, value.replace("\r\n", "\n")).strip()


def _filled(value: str) -> str:
    if not value:
        raise ValueError("must not be blank")
    return value


def _filled_line(value: str) -> str:
    return _filled(_line(value))


def _filled_text(value: str) -> str:
    return _filled(_text(value))


def _skills(values: list[str]) -> list[str]:
    cleaned = sorted({v.lower() for v in values if v})
    if any(len(v) > 64 for v in cleaned):
        raise ValueError("each skill must be at most 64 characters")
    return cleaned


def _pattern(pattern: str) -> FieldInfo:
    """Declared in the OpenAPI document; enforced, with a clearer message, by the validators."""
    field: FieldInfo = Field(json_schema_extra={"pattern": pattern})
    return field


# Single-line fields: no control characters at all; multi-line: tab and newline allowed.
Name = Annotated[
    str, Field(max_length=200), _pattern(FILLED_LINE_PATTERN), AfterValidator(_filled_line)
]
Text = Annotated[
    str, Field(max_length=2000), _pattern(FILLED_TEXT_PATTERN), AfterValidator(_filled_text)
]
LongText = Annotated[
    str, Field(max_length=10000), _pattern(FILLED_TEXT_PATTERN), AfterValidator(_filled_text)
]
Note = Annotated[str, Field(max_length=2000), _pattern(TEXT_PATTERN), AfterValidator(_text)]
Skill = Annotated[str, Field(max_length=64), _pattern(LINE_PATTERN), AfterValidator(_line)]
Skills = Annotated[list[Skill], Field(max_length=20), AfterValidator(_skills)]


def _offered_zone(value: str) -> str:
    if not zones.offered(value):
        raise ValueError("not a time zone we know: use an IANA name such as America/New_York")
    return value


# Where someone reads moments: a place of the IANA zone database, or UTC (the places listed in
# the document, as Settings offers them).
TimeZone = Annotated[
    str,
    Field(
        max_length=64,
        examples=["America/Los_Angeles"],
        json_schema_extra={"enum": list(zones.choices())},
    ),
    AfterValidator(_offered_zone),
]
Category = Literal["sales", "marketing", "technology", "hr", "finance", "other"]
Id = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
# Numbers and booleans as JSON has them: no "10" for 10, no true for 1.
Hours = Annotated[int, Field(strict=True, ge=5, le=40)]
Cents = Annotated[int, Field(strict=True, gt=0, le=10_000_000)]
Days = Annotated[int, Field(strict=True, ge=7, le=30)]
Percent = Annotated[int, Field(strict=True, ge=0, le=100)]
Stars = Annotated[int, Field(strict=True, ge=1, le=5)]
Flag = Annotated[bool, Field(strict=True)]


# ---------------------------------------------------------------- profiles
# Lengths say what to do in plain words (not the library's "String should have at most ...");
# the OpenAPI document still declares them.
_http_url: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _at_most(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"Keep it to {limit} characters or fewer (this is {len(value)})")
        return value

    return AfterValidator(check)


def _declared(pattern: str, limit: int) -> FieldInfo:
    field: FieldInfo = Field(json_schema_extra={"pattern": pattern, "maxLength": limit})
    return field


def link_pattern(site: str | None) -> str:
    """What the document declares of a link: http(s), a host name (on `site`, when named), an
    optional port, then anything visible. The validator takes any http(s) address (IDN hosts,
    IP addresses too); this is the part every JSON Schema tool can check."""
    host = r"([A-Za-z0-9-]+\.)*" + (re.escape(site) if site else r"[A-Za-z][A-Za-z0-9-]*")
    return rf"^https?://{host}(:[0-9]{{1,4}})?([/?#]{_VISIBLE}*)?$"


def _link_field(site: str | None) -> FieldInfo:
    field: FieldInfo = Field(
        json_schema_extra={"maxLength": LINK_LENGTH, "pattern": link_pattern(site)}
    )
    return field


def _link(site: str | None) -> AfterValidator:
    """An http(s) address (on `site` or one of its subdomains, when named), at most
    LINK_LENGTH characters."""

    def check(value: str) -> str:
        value = _line(value)
        if len(value) > LINK_LENGTH:
            raise ValueError(f"Keep the address to {LINK_LENGTH} characters or fewer")
        try:
            url = _http_url.validate_python(value)
        except ValidationError:
            raise ValueError("Give a full web address, starting with https://") from None
        host = (url.host or "").lower()
        if site and host != site and not host.endswith("." + site):
            raise ValueError(f"Give the address of your profile on {site}")
        return str(url) if len(str(url)) <= LINK_LENGTH else value

    return AfterValidator(check)


def _year(value: int) -> int:
    if not 1950 <= value <= 2100:
        raise ValueError("Give a year between 1950 and 2100, like 2027")
    return value


ProfileLine = Annotated[
    str,
    _declared(LINE_PATTERN, PROFILE_LINE_LENGTH),
    AfterValidator(_line),
    _at_most(PROFILE_LINE_LENGTH),
]
ProfileText = Annotated[
    str,
    _declared(TEXT_PATTERN, PROFILE_TEXT_LENGTH),
    AfterValidator(_text),
    _at_most(PROFILE_TEXT_LENGTH),
]
WebLink = Annotated[str, _link_field(None), _link(None)]
LinkedInLink = Annotated[str, _link_field("linkedin.com"), _link("linkedin.com")]
GitHubLink = Annotated[str, _link_field("github.com"), _link("github.com")]
GraduationYear = Annotated[
    int,
    Field(strict=True, json_schema_extra={"minimum": 1950, "maximum": 2100}),
    AfterValidator(_year),
]
# The parts of a launcher's profile they may show on their public portfolio (employers and
# ops see them all). Their name and skills are always shown.
ProfilePart = Literal["headline", "school", "links", "avatar"]
PROFILE_PARTS: tuple[str, ...] = ("headline", "school", "links", "avatar")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


PaymentMethodId = Annotated[
    str, Field(pattern=r"^pm_[A-Za-z0-9_]+$", max_length=100, examples=["pm_card_visa"])
]


class EmployerIn(Strict):
    """Sign-up: the account is created when the email's owner uses the link or code sent to
    it; the card follows (Stripe Checkout on the web, `PUT /v1/employers/me/payment_method`)."""

    name: Name
    email: EmailStr
    company: Name
    time_zone: TimeZone = zones.UTC_NAME


class PaymentMethodIn(Strict):
    payment_method: PaymentMethodId


class PaymentMethodOut(BaseModel):
    payment_method: str


class LauncherIn(Strict):
    """Sign-up: the account is created when the email's owner uses the link or code sent to
    it."""

    name: Name
    email: EmailStr
    skills: Skills = []
    time_zone: TimeZone = zones.UTC_NAME


class SignUpOut(BaseModel):
    """The same answer whether or not the address has an account (its owner is told which)."""

    status: Literal["email_sent"] = "email_sent"
    email: str
    message: str


class CodeIn(Strict):
    code: str = Field(min_length=1, max_length=100, description="The code from the email")
    token_name: Name = "API"  # shown in the account's token list


class TokenIssuedOut(BaseModel):
    """An API token for the account the code's email opens (shown once: keep it)."""

    role: Literal["employer", "launcher"]
    id: str
    api_token: str
    # Launchers: open it to set up payouts (links expire; ask for a new one any time).
    onboarding_url: str | None = None


class OnboardingLinkOut(BaseModel):
    onboarding_url: str


class DashboardLinkOut(BaseModel):
    """A fresh link into the launcher's Stripe Express dashboard (payouts, tax forms): single
    use and short-lived, so open it at once and never keep it."""

    url: str


class InternshipIn(Strict):
    title: Name
    description: LongText
    category: Category
    skills: Skills = []
    estimated_hours: Hours
    fee_cents: Cents
    currency: Literal["usd", "eur", "gbp"] = "usd"
    duration_days: Days
    # Only launchers the employer invites see it and may apply.
    invitation_only: bool = False


class InvitationIn(Strict):
    launcher_id: Id


# Said to a caller who applies or kicks off without accepting the terms (422).
TERMS_NOT_ACCEPTED = (
    "read the internship's terms (`terms` in GET /v1/internships/{id}) and send "
    "accept_terms: true to accept them"
)
TermsHash = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The `terms.hash` of the internship as you read it: refused (409) if its "
        "terms are not those",
    ),
]


def _acceptance_required(schema: dict[str, Any]) -> None:
    """The document says what the validator enforces: `accept_terms` is required, and true."""
    schema["required"] = [*schema.get("required", []), "accept_terms"]
    accept = schema["properties"]["accept_terms"]
    accept.pop("default", None)
    accept["const"] = True


class TermsAccepted(Strict):
    """Applying and kicking off accept the internship's terms (its `terms`), explicitly."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_acceptance_required)

    accept_terms: Annotated[
        Flag,
        Field(
            validate_default=True,
            description="true: you accept the terms of this internship (its `terms`)",
        ),
    ] = False
    terms_hash: TermsHash | None = None

    @field_validator("accept_terms")
    @classmethod
    def _accepted(cls, accepted: bool) -> bool:
        if not accepted:
            raise ValueError(TERMS_NOT_ACCEPTED)
        return accepted


class ApplicationIn(TermsAccepted):
    pitch: Text


class KickoffIn(TermsAccepted):
    pass


class SelectionIn(Strict):
    launcher_id: Id


FileIds = Annotated[
    list[Annotated[int, Field(strict=True, ge=1)]],
    Field(max_length=10, description="Files uploaded first (POST /v1/internships/{id}/files)"),
]


class SubmissionIn(Strict):
    # The document says what the validator below enforces: a link, files, or both.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["url"], "properties": {"url": {"type": "string"}}},
                {"required": ["files"], "properties": {"files": {"minItems": 1}}},
            ]
        },
    )

    url: HttpUrl | None = None
    note: Note = ""
    files: FileIds = []

    @model_validator(mode="after")
    def _something_delivered(self) -> SubmissionIn:
        if self.url is None and not self.files:
            raise ValueError("give a link to the work (url), attach its files (files), or both")
        return self


class ReviewIn(Strict):
    decision: Literal["approve", "request_revision"]
    feedback: Note = ""


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as err:  # e.g. 9999-12-31T23:59-23:59 is past year 9999 in UTC
        raise ValueError("must be a date that exists in UTC") from err


class ExtensionIn(Strict):
    due_at: Annotated[AwareDatetime, AfterValidator(_utc)]


class CancellationIn(Strict):
    reason: Text
    refund: Flag = True


class DisputeIn(Strict):
    reason: Text


SPLIT_PART = "for a split, give the launcher between 1 and 99 percent of their share"


class ResolutionIn(Strict):
    # The document says it too: a split names the launcher's part, from 1 to 99.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"outcome": {"const": "split"}}, "required": ["outcome"]},
            "then": {
                "properties": {"launcher_percent": {"minimum": 1, "maximum": 99}},
                "required": ["launcher_percent"],
            },
        }
    )

    outcome: Literal["pay_launcher", "split", "refund"]
    # A split's part: this percent of the launcher's share is paid to them, and the employer is
    # refunded the rest of the fee (the platform keeps its fee only on the launcher's part).
    launcher_percent: Annotated[Percent, Field(validate_default=True)] = 0
    note: Note = ""

    @field_validator("launcher_percent")
    @classmethod
    def _a_split_gives_each_side_a_part(cls, percent: int, info: ValidationInfo) -> int:
        if info.data.get("outcome") == "split" and not 0 < percent < 100:
            raise ValueError(SPLIT_PART)
        return percent


class FeedbackIn(Strict):
    rating: Stars
    comment: Note = ""


class InternshipSummary(BaseModel):
    id: str
    title: str
    company: str
    category: str
    skills: list[str]
    stage: str
    estimated_hours: int
    fee_cents: int
    launcher_share_cents: int  # what approved work pays the launcher of the fee
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
    url: str  # "" when the work is files only
    note: str
    submitted_at: datetime
    files: list[int] = Field(description="The deliverable's files: GET /v1/files/{id}")


class TimelineOut(BaseModel):
    seq: int
    at: datetime
    stage: str
    event: str
    actor_role: str
    actor_id: str  # for an employer, the organisation
    note: str
    member_id: str | None = None  # the employer's member who acted


class InvitationOut(BaseModel):
    """A launcher invited to apply, and their answer: "" (none yet), "accepted" (they
    applied) or "declined"."""

    launcher_id: str
    invited_at: datetime
    invited_by: str | None  # the member who invited
    answer: str


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


class DeadlineOut(BaseModel):
    """What happens next, when, and what stops it, as the workflow's own timers say: "{happens}
    on {at} unless {unless}." (no `unless`: nothing stops it)."""

    kind: str
    at: datetime
    happens: str
    unless: str
    # The stage's other deadlines are on hold while this one runs (an open dispute's decision).
    paused: bool = False


class TermLineOut(BaseModel):
    label: str
    text: str


class TermsOut(BaseModel):
    """The terms of the internship (`core.terms`), pinned when it was posted: a change of policy
    for new internships never changes them. Durations in seconds, as agreed."""

    fee_cents: int
    currency: str
    launcher_share_percent: int
    launcher_share_cents: int  # paid to the launcher once the work is approved
    platform_fee_cents: int
    duration_days: int  # from kickoff to the due date
    review_auto_approve_seconds: int  # submitted work not reviewed by then is approved
    max_revision_rounds: int
    revision_time_seconds: int  # the least a revision round gives the launcher
    max_extension_seconds: int  # past the original due date
    overdue_escalation_seconds: int  # after the due date: ops step in
    overdue_cancel_seconds: int  # after the due date: cancelled and refunded
    delivered_work_refunded_by_ops_only: bool
    dispute_decision_seconds: int | None  # null: ops decide disputes with no deadline
    dispute_default_if_delivered: str | None  # the outcome if ops have not decided by then
    dispute_default_if_not_delivered: str | None
    lines: list[TermLineOut] = Field(description="The terms as people read them")
    hash: str = Field(
        description="sha256 of the values above as canonical JSON: send it as `terms_hash` "
        "when applying or kicking off"
    )


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
    # The member of the employer who posted it (None before organisations had members).
    posted_by: str | None = None
    # Only invited launchers see it and may apply.
    invitation_only: bool = False
    # Every invitation for the employer and ops; a launcher's own for them.
    invitations: list[InvitationOut] = []
    # The workflow's upcoming deadlines, soonest first, worded for the reader.
    deadlines: list[DeadlineOut] = []
    # What applying and kicking off accept (`accept_terms`), for everyone who may read it.
    terms: TermsOut


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
    profile: LauncherProfileOut | None = None  # the parts its reader may see


class MeOut(BaseModel):
    """Who the token belongs to."""

    role: Literal["employer", "launcher", "ops"]
    id: str  # an employer's: the organisation's (internships' employer_id)
    name: str
    email: str
    company: str | None = None  # employers
    time_zone: str  # where they read moments: on pages and in emails (ops: OPS_TIME_ZONE)
    # Employers: which member of the organisation calls, their role, and whether (a hiring
    # manager) they act only on the internships they posted.
    member_id: str | None = None
    member_role: MemberRole | None = None
    own_internships_only: bool | None = None
    skills: list[str] | None = None  # launchers
    payouts_enabled: bool | None = None  # launchers: payout onboarding finished
    profile: LauncherProfileOut | None = None  # launchers
    company_profile: CompanyProfileOut | None = None  # employers


class TokenOut(BaseModel):
    api_token: str


class ContactOut(BaseModel):
    id: str
    name: str
    email: str
    company: str | None = None


class ContactsOut(BaseModel):
    """The parties of one internship, for ops to reach them."""

    employer: ContactOut
    launcher: ContactOut | None


class RankedApplicantOut(BaseModel):
    """An applicant with how well they fit, and why (skills, on-time record, ratings)."""

    launcher_id: str
    name: str
    pitch: str
    applied_at: datetime
    withdrawn: bool
    score: int  # 0-100
    reasons: list[str]
    profile: LauncherProfileOut | None = None


class RecommendationOut(BaseModel):
    internship: InternshipSummary
    score: int  # 0-100
    reasons: list[str]


class CandidateOut(BaseModel):
    """A launcher who fits an open posting, to invite: how well, and why (skills, on-time
    record, ratings)."""

    launcher_id: str
    name: str
    headline: str | None
    score: int  # 0-100
    reasons: list[str]


InvitationAnswer = Literal["", "accepted", "declined"]


class LauncherInvitationOut(BaseModel):
    """An invitation to apply a launcher received, and their answer: "" (none yet), "accepted"
    (they applied) or "declined"."""

    internship: InternshipSummary
    invited_at: datetime
    answer: InvitationAnswer


class LauncherProfileIn(Strict):
    """A launcher's profile: only the fields sent change; null (or "") clears one."""

    headline: ProfileLine | None = None
    school: ProfileLine | None = None
    graduation_year: GraduationYear | None = None
    website: WebLink | None = None
    linkedin: LinkedInLink | None = None
    github: GitHubLink | None = None
    skills: Skills | None = None
    # What the public portfolio shows besides the name and skills (all listed parts, no others).
    public_parts: list[ProfilePart] | None = None
    # Whether employers may invite them to apply (null: back to the default, yes).
    takes_invitations: Flag | None = None


class LauncherProfileOut(BaseModel):
    """A launcher's profile as its reader may see it: the parts not shown to them are null.
    `avatar_url` is the photo (null: none, show `initials`)."""

    headline: str | None = None
    school: str | None = None
    graduation_year: int | None = None
    website: str | None = None
    linkedin: str | None = None
    github: str | None = None
    skills: list[str] = []  # always shown
    avatar_url: str | None = None
    initials: str
    public_parts: list[str] | None = None  # to the launcher alone
    takes_invitations: bool | None = None  # to the launcher alone


class CompanyProfileIn(Strict):
    """A company's profile: only the fields sent change; null (or "") clears one."""

    website: WebLink | None = None
    description: ProfileText | None = None


class CompanyProfileOut(BaseModel):
    """A company as its postings show it; `logo_url` null: none, show `initials`."""

    company: str
    website: str | None = None
    description: str | None = None
    logo_url: str | None = None
    initials: str


# ---------------------------------------------------------------- the organisation


class MemberOut(BaseModel):
    """A person of the organisation. `all_internships`: a hiring manager acts on every
    internship of the organisation (false: only those they posted); always true otherwise."""

    id: str
    name: str
    email: str
    role: MemberRole
    all_internships: bool
    joined_at: datetime
    removed_at: datetime | None = None


class OrganisationOut(BaseModel):
    """The caller's organisation: its members, the caller's own role, and where its emails
    also go (`notify_email`); `card_label` to members who may read the card."""

    id: str
    company: str
    you: MemberOut
    notify_email: str | None
    card_label: str | None = None
    members: list[MemberOut]
    # Who receipts and credit notes are made out to (each document keeps them as at issue).
    billing_name: str | None = None
    billing_address: str | None = None
    tax_id: str | None = None


class OrganisationIn(Strict):
    """Only the fields sent change. `notify_email`: every email about the organisation's
    internships also goes there (a shared inbox); null clears it."""

    notify_email: EmailStr | None = None
    # Billing details on the documents issued from now on (null or "" clears one; the
    # company's name stands in for an empty billing name).
    billing_name: str | None = Field(None, max_length=200)
    billing_address: str | None = Field(None, max_length=500)
    tax_id: str | None = Field(None, max_length=64)


class ColleagueInvitationIn(Strict):
    """Invite a colleague: they are emailed a link and a code that work once, for
    COLLEAGUE_INVITATION_DAYS. `all_internships` (hiring managers): false limits them to the
    internships they post."""

    email: EmailStr
    role: MemberRole
    all_internships: Flag = True


class ColleagueInvitationOut(BaseModel):
    id: str
    email: str
    role: MemberRole
    all_internships: bool
    invited_by: str  # the admin's member id
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None


class MemberChangeIn(Strict):
    """Only the fields sent change."""

    role: MemberRole | None = None
    all_internships: Flag | None = None


class JoinIn(Strict):
    code: str = Field(min_length=1, max_length=100, description="The code from the invitation")
    name: Name = Field(description="Your name, as your colleagues see it")
    token_name: Name = "API"  # shown in the account's token list
    time_zone: TimeZone = zones.UTC_NAME


class JoinedOut(BaseModel):
    """The new member, and an API token for them (shown once: keep it)."""

    company: str
    member: MemberOut
    api_token: str


# ---------------------------------------------------------------- conversations

MessageText = Annotated[str, Field(max_length=5000), _pattern(TEXT_PATTERN), AfterValidator(_text)]


class MessageIn(Strict):
    body: MessageText = ""
    files: FileIds = []


class FileOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    url: str


class MessageOut(BaseModel):
    id: int
    author_role: str = Field(description="employer, launcher or ops")
    author_name: str
    body: str | None = Field(description="None once ops hid the message")
    created_at: datetime
    via: str = Field(description="web, api or email")
    in_dispute: bool
    hidden: bool
    mine: bool
    files: list[FileOut]


class ThreadOut(BaseModel):
    launcher_id: str
    launcher_name: str
    selected: bool
    writable: bool
    unread: int
    waiting_on_you: bool
    last_message_at: datetime | None
    messages_url: str


class MessagesPage(BaseModel):
    launcher_id: str
    writable: bool
    closed_reason: str | None = Field(description="Why you can't write here, when you can't")
    messages: list[MessageOut] = Field(description="Oldest first")
    earlier_cursor: int | None = Field(description="`before` for the page of earlier messages")


class ReportIn(Strict):
    reason: Text


class ModerationIn(Strict):
    hide: Flag
    reason: Note = ""


class ReportOut(BaseModel):
    id: int
    message_id: int
    internship_id: str
    launcher_id: str
    reason: str
    reported_at: datetime
    excerpt: str
    hidden: bool


class DocumentOut(BaseModel):
    """A receipt (a charge), credit note (a refund) or statement (a payout to the launcher),
    as issued: `number` is the organisation's sequence number, `display_number` as printed.
    The parties are as they were at issue. `url`: the page; `pdf_url`: the PDF (also this
    document's own address with `Accept: application/pdf`)."""

    id: int
    kind: Literal["receipt", "credit_note", "statement"]
    number: int
    display_number: str
    amount_cents: int
    currency: str
    issued_at: datetime
    employer_id: str
    internship_id: str
    internship_title: str
    launcher_id: str | None
    billing_name: str
    billing_address: str
    tax_id: str
    billing_email: str
    launcher_name: str
    stripe_id: str
    url: str
    pdf_url: str


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


class EarningsTotal(BaseModel):
    currency: str
    amount_cents: int


class EarningsOut(BaseModel):
    """A launcher's payouts of one calendar year (UTC), as the earnings CSV lists them: each
    statement, oldest first, and the total per currency."""

    year: int
    statements: list[DocumentOut]
    totals: list[EarningsTotal]
