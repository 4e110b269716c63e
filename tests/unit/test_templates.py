"""Email templates: every event renders a subject, a text body and an HTML body from exactly the
documented context, under the same Jinja environment the mailer uses.

The context given to templates is::

    recipient  {"name", "role"}                      role: employer | launcher | ops
    internship {"id", "title", "company", "category", "stage", "fee", "due_at", "url",
                "payouts_url", "deadlines"}
               deadlines: {kind: preformatted moment} of the workflow's upcoming deadlines
               (`InternshipState.deadlines`; read with .get(kind): any may be absent)
    event      {"kind", "actor", "at", "by"}   by: the employer's member who acted, or ""
    details    event-specific, see CONTRACT (optional keys must be read with details.get(...))
"""

from __future__ import annotations

from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    UndefinedError,
    select_autoescape,
)
from markupsafe import escape

from core.internship import Posting, Role
from core.settings import Settings
from core.terms import terms_of

# Pure rendering from this checkout's templates: no server, no database.
pytestmark = pytest.mark.unit

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "core" / "templates"
EMAIL_DIR = TEMPLATES_DIR / "email"

# event -> (required detail keys, optional detail keys)
CONTRACT: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "applied": (frozenset({"launcher_name", "pitch"}), frozenset()),
    "invited": (frozenset(), frozenset()),
    "invitation_declined": (frozenset({"launcher_name"}), frozenset()),
    "application_withdrawn": (frozenset({"launcher_name"}), frozenset()),
    "selected": (frozenset(), frozenset()),
    "not_selected": (frozenset(), frozenset()),
    # document_url: the receipt (employer), credit note (employer) or statement (launcher)
    # the event issued, for the recipient who may read it.
    # terms: the internship's terms (`core.terms.email_context`): lines, (label, sentence)
    # pairs, and ref, the hash as people read it.
    "kickoff": (frozenset({"amount"}), frozenset({"document_url", "terms"})),
    # "dispute_waiting" goes to ops only, with the dispute's terms (see dispute_opened).
    "reminder": (
        frozenset({"reason"}),
        frozenset({"onboarding_url", "decide_by", "default_outcome"}),
    ),
    "overdue": (frozenset(), frozenset()),
    "escalation": (frozenset({"reason", "level"}), frozenset()),
    "submission": (frozenset({"url", "note", "round"}), frozenset({"files"})),
    "revision_requested": (frozenset({"feedback", "round", "rounds_left"}), frozenset()),
    "approved": (frozenset({"auto"}), frozenset({"feedback"})),
    "payout_waiting": (frozenset(), frozenset({"onboarding_url"})),
    "paid": (frozenset({"amount"}), frozenset({"document_url"})),
    "cancelled": (frozenset({"reason", "refunded"}), frozenset({"amount", "document_url"})),
    "expired": (frozenset(), frozenset()),
    "launcher_withdrew": (frozenset({"launcher_name"}), frozenset()),
    "extended": (frozenset(), frozenset()),
    # opened_by: employer | launcher | system. decide_by (preformatted) and default_outcome
    # (pay_launcher | refund) are absent for internships started before disputes had a deadline.
    "dispute_opened": (
        frozenset({"opened_by", "reason"}),
        frozenset({"decide_by", "default_outcome"}),
    ),
    # by_default: ops did not decide by the deadline, so the default outcome applied.
    "dispute_resolved": (
        frozenset({"outcome"}),
        frozenset({"launcher_amount", "refund_amount", "note", "by_default"}),
    ),
    "feedback_requested": (frozenset(), frozenset()),
    "completed": (frozenset(), frozenset({"rating_received", "comment_received"})),
    # To ops, from the worker's outbox relay: an email the mail relay refused for good.
    "delivery_failed": (
        frozenset({"failed_kind", "recipient_role", "recipient_id", "error"}),
        frozenset(),
    ),
}
ROLES = ("employer", "launcher", "ops")
REMINDER_REASONS = (
    "review_applicants",
    "kickoff",
    "due_soon",
    "review_submission",
    "payout_onboarding",
    "dispute_waiting",
)
# Who each reminder goes to, where not everyone: a waiting dispute is ops' to decide.
REMINDER_ROLES: dict[str, tuple[str, ...]] = {"dispute_waiting": ("ops",)}
DEFAULT_OUTCOMES = ("pay_launcher", "refund")
RECIPIENT_KEYS = frozenset({"name", "role"})
INTERNSHIP_KEYS = frozenset(
    {
        "id",
        "title",
        "company",
        "category",
        "stage",
        "fee",
        "due_at",
        "url",
        "payouts_url",
        "deadlines",
    }
)
EVENT_KEYS = frozenset({"kind", "actor", "at", "by"})


def terms_lines() -> list[tuple[str, str]]:
    """The terms of an internship posted under the default policies, as core.terms says them."""
    policy = Settings(_env_file=None).policy()  # type: ignore[call-arg]
    posting = Posting(
        "int_123", "e", "Acme", "t", "d", "marketing", [], 10, 40000, "usd", 7, policy
    )
    return terms_of(posting).lines()


XSS = "<script>alert(1)</script>"
TITLE = "Brand audit & launch plan"
DUE_AT = "2026-12-03 17:00 UTC"
INTERNSHIP_URL = "https://api.example.com/internships/int_123"
ONBOARDING_URL = "https://connect.example.com/onboarding/acct_123"
DOCUMENT_URL = "https://app.example.com/documents/42"
PAYOUTS_URL = "https://api.example.com/payouts"
LAUNCHER_NAME = f"Ada Lovelace {XSS}"
PITCH = f"I ran social media for my campus club.\nHappy to start Monday! {XSS}"
NOTE = f"Deck and summary attached. {XSS}"
FEEDBACK = f"Please tighten the competitor section. {XSS}"
DECIDE_BY = "2026-12-10 17:00 UTC"
AUTO_APPROVE_AT = "2026-12-14 17:00 UTC"
AUTO_CANCEL_AT = "2026-12-13 17:00 UTC"
# The workflow's upcoming deadlines as an email knows them (with a due date; none without).
DEADLINES = {
    "due": DUE_AT,
    "auto_cancel": AUTO_CANCEL_AT,
    "auto_approve": AUTO_APPROVE_AT,
    "dispute_decision": DECIDE_BY,
}
# What the workflow gives as the reason when it opens a dispute itself (an overdue revision).
SYSTEM_REASON = "the revision is 10 days overdue; earlier work was delivered"
DEFAULT_NOTE = "Ops did not decide within 7 days: the default outcome applies"
# The terms a kickoff email lists, as the projection gives them (a label carrying the payload).
TERMS = {
    "lines": [(f"Fee {XSS}", "$400.00, charged to the employer's card at kickoff.")]
    + terms_lines(),
    "ref": "0123456789abcdef",
}


def make_env() -> Environment:
    """The mailer's environment, with the loader pointed at this checkout's templates."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class ContractDict(dict):
    """A dict that fails the test when a template asks for a key outside the contract.

    Missing contract keys behave like a plain dict (Jinja turns them into StrictUndefined,
    which raises as soon as the template uses the value).
    """

    def __init__(self, data: dict[str, Any], allowed: frozenset[str]) -> None:
        super().__init__(data)
        self._allowed = allowed

    def _check(self, key: object) -> None:
        if key not in self._allowed:
            raise AssertionError(f"template reads {key!r}, which is not in the contract")

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._check(key)
        return super().get(key, default)


def build_context(
    event: str,
    role: str,
    actor: str,
    details: dict[str, Any],
    *,
    due_at: str | None = DUE_AT,
    with_optional: bool = True,
    deadlines: dict[str, str] | None = None,
) -> dict[str, Any]:
    required, optional = CONTRACT[event]
    if deadlines is None:
        deadlines = dict(DEADLINES) if due_at else {}
    if not with_optional:
        details = {k: v for k, v in details.items() if k in required}
    return {
        "recipient": ContractDict({"name": f"Sam {XSS}", "role": role}, RECIPIENT_KEYS),
        "internship": ContractDict(
            {
                "id": "int_123",
                "title": TITLE,
                "company": "Northwind Labs",
                "category": "marketing",
                "stage": "in_progress",
                "fee": "$400.00",
                "due_at": due_at,
                "url": INTERNSHIP_URL,
                "payouts_url": PAYOUTS_URL,
                "deadlines": deadlines,
            },
            INTERNSHIP_KEYS,
        ),
        "event": ContractDict(
            {
                "kind": event,
                "actor": actor,
                "at": "2026-11-28 09:30 UTC",
                "by": f"Maya {XSS}" if actor == "employer" else "",
            },
            EVENT_KEYS,
        ),
        "details": ContractDict(details, required | optional),
    }


def render(env: Environment, event: str, ctx: dict[str, Any]) -> tuple[str, str, str]:
    """Render exactly as the mailer does: (subject, text, html)."""
    txt: Template = env.get_template(f"email/{event}.txt")
    subject = "".join(txt.blocks["subject"](txt.new_context(ctx))).strip()
    text = txt.render(ctx)
    html = env.get_template(f"email/{event}.html").render(ctx)
    return subject, text, html


# (recipient role, opened_by): ops and the other party hear of a dispute; ops and both parties
# when the system opened it.
DISPUTE_OPENED_TO = (
    ("ops", "employer"),
    ("ops", "launcher"),
    ("employer", "launcher"),
    ("launcher", "employer"),
    ("ops", "system"),
    ("employer", "system"),
    ("launcher", "system"),
)


def _cases() -> list[Any]:
    cases: list[Any] = []

    def add(event: str, role: str, label: str = "", actor: str = "system", **details: Any):
        case_id = f"{event}-{role}" + (f"-{label}" if label else "")
        cases.append(pytest.param(event, role, actor, details, id=case_id))

    add("applied", "employer", actor="launcher", launcher_name=LAUNCHER_NAME, pitch=PITCH)
    add("application_withdrawn", "employer", actor="launcher", launcher_name=LAUNCHER_NAME)
    add("invited", "launcher", actor="employer")
    add("invitation_declined", "employer", actor="launcher", launcher_name=LAUNCHER_NAME)
    add("selected", "launcher", actor="employer")
    add("not_selected", "launcher", actor="employer")
    for role in ("employer", "launcher"):
        add(
            "kickoff",
            role,
            actor="employer",
            amount="$400.00",
            document_url=DOCUMENT_URL,
            terms=TERMS,
        )
    for reason in REMINDER_REASONS:
        for role in REMINDER_ROLES.get(reason, ROLES):
            defaults = DEFAULT_OUTCOMES if reason == "dispute_waiting" else DEFAULT_OUTCOMES[:1]
            for default in defaults:
                add(
                    "reminder",
                    role,
                    f"{reason}-{default}" if reason == "dispute_waiting" else reason,
                    reason=reason,
                    onboarding_url=ONBOARDING_URL,
                    decide_by=DECIDE_BY,
                    default_outcome=default,
                )
    for role in ROLES:
        add("overdue", role)
    add("escalation", "ops", reason=f"no submission 3 days after due date {XSS}", level=2)
    for rnd in (1, 2):
        add(
            "submission",
            "employer",
            f"round{rnd}",
            actor="launcher",
            url="https://drive.example.com/deliverable?id=1&v=2",
            note=NOTE,
            round=rnd,
            files=0,
        )
    # Work delivered as files alone: no link.
    add("submission", "employer", "files", actor="launcher", url="", note="", round=1, files=2)
    for rnd, left in ((1, 1), (2, 0)):
        add(
            "revision_requested",
            "launcher",
            f"left{left}",
            actor="employer",
            feedback=FEEDBACK,
            round=rnd,
            rounds_left=left,
        )
    for auto in (True, False):
        add(
            "approved",
            "launcher",
            "auto" if auto else "manual",
            actor="system" if auto else "employer",
            auto=auto,
            feedback=FEEDBACK,
        )
    add("payout_waiting", "launcher", onboarding_url=ONBOARDING_URL)
    add("paid", "launcher", amount="$360.00", document_url=DOCUMENT_URL)
    for role in ("employer", "launcher"):
        for refunded in (True, False):
            for actor in ROLES + ("system",):
                add(
                    "cancelled",
                    role,
                    f"{'refunded' if refunded else 'kept'}-by-{actor}",
                    actor=actor,
                    reason=f"Scope changed {XSS}",
                    refunded=refunded,
                    amount="$400.00",
                    document_url=DOCUMENT_URL,
                )
    add("expired", "employer")
    add("launcher_withdrew", "employer", actor="launcher", launcher_name=LAUNCHER_NAME)
    for actor in ("employer", "ops"):
        for role in ("launcher", "employer"):
            add("extended", role, f"by-{actor}", actor=actor)
    for role, opened_by in DISPUTE_OPENED_TO:
        for default in DEFAULT_OUTCOMES:
            add(
                "dispute_opened",
                role,
                f"by-{opened_by}-default-{default}",
                actor=opened_by,
                opened_by=opened_by,
                reason=SYSTEM_REASON
                if opened_by == "system"
                else f"Work does not match the brief {XSS}",
                decide_by=DECIDE_BY,
                default_outcome=default,
            )
    for outcome in ("pay_launcher", "split", "refund"):
        for role in ("employer", "launcher"):
            add(
                "dispute_resolved",
                role,
                outcome,
                actor="ops",
                outcome=outcome,
                launcher_amount="$180.00",
                refund_amount="$200.00",
                note=f"Half the deliverables were met. {XSS}",
                by_default=False,
            )
    # Ops did not decide by the deadline: the default outcome applied.
    for outcome, paid, back in (
        ("pay_launcher", "$360.00", "$0.00"),
        ("refund", "$0.00", "$400.00"),
    ):
        for role in ("employer", "launcher"):
            add(
                "dispute_resolved",
                role,
                f"{outcome}-by-default",
                outcome=outcome,
                launcher_amount=paid,
                refund_amount=back,
                note=DEFAULT_NOTE,
                by_default=True,
            )
    for role in ("employer", "launcher"):
        add("feedback_requested", role)
        add(
            "completed",
            role,
            rating_received=4,
            comment_received=f"Great communication! {XSS}",
        )
    add(
        "delivery_failed",
        "ops",
        failed_kind="overdue",
        recipient_role="launcher",
        recipient_id="lnc_123",
        error=f"SMTPRecipientsRefused: 550 5.1.1 mailbox unavailable {XSS}",
    )
    return cases


CASES = _cases()


class _HtmlChecker(HTMLParser):
    """Collects unbalanced tags, h1 count and link targets of a rendered HTML email."""

    VOID = frozenset({"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.h1 = 0
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h1":
            self.h1 += 1
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack}")
        else:
            self.stack.pop()


def check_html(html: str) -> _HtmlChecker:
    checker = _HtmlChecker()
    checker.feed(html)
    checker.close()
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed tags: {checker.stack}"
    return checker


# Emails about an account rather than an internship (their own layout and context), and the
# message emails (an internship's layout, the conversation's context: tested below).
ACCOUNT_EMAILS = {"sign_in", "colleague_invitation", "messages"}


def template_events(ext: str) -> set[str]:
    return {
        p.stem
        for p in EMAIL_DIR.glob(f"*.{ext}")
        if p.stem != "base" and not p.name.startswith("_") and p.stem not in ACCOUNT_EMAILS
    }


@pytest.mark.parametrize(
    ("kind", "subject", "button"),
    [
        ("sign_in", "Your sign-in link for Micro-internships", "Sign in"),
        ("sign_up", "Confirm your email to create your Micro-internships account", "Create my"),
        ("existing", "You already have a Micro-internships account", "Sign in"),
    ],
)
def test_inbox_emails_have_the_link_the_code_their_lifetime_and_escape_the_name(
    kind: str, subject: str, button: str
) -> None:
    from api.inbox_email import renderer
    from core.inbox import Account, Letter
    from core.settings import Settings

    render = renderer(Settings(_env_file=None))  # type: ignore[call-arg]
    code = "c" * 43
    url = f"http://127.0.0.1:8000/sign-in/{code}"
    account = Account(Role.EMPLOYER, "e1", "<b>Ann</b>", "ann@example.com")
    email = render(Letter(kind, account, url, code, 15))
    assert email.subject == subject
    assert url in email.text and "15 minutes" in email.text and "<b>Ann</b>" in email.text
    assert f"\n{code}\n" in email.text and "/v1/tokens" in email.text
    assert f'href="{url}"' in email.html and "&lt;b&gt;Ann&lt;/b&gt;" in email.html
    assert button in email.html and code in email.html
    check_html(email.html)


@pytest.mark.parametrize("kind", ["sign_in", "sign_up", "existing"])
def test_inbox_emails_count_one_minute_as_one_minute(kind: str) -> None:
    from api.inbox_email import renderer
    from core.inbox import Account, Letter
    from core.settings import Settings

    render = renderer(Settings(_env_file=None))  # type: ignore[call-arg]
    account = Account(Role.LAUNCHER, "l1", "Lee", "lee@example.com")
    email = render(Letter(kind, account, "http://127.0.0.1:8000/sign-in/x", "x", 1))
    for body in (email.text, email.html):
        assert "for 1 minute." in body and "1 minutes" not in body


def test_a_colleague_s_invitation_names_the_company_the_inviter_the_role_link_and_code() -> None:
    from api.inbox_email import invitation_renderer
    from core.organisation import InvitationLetter
    from core.settings import Settings

    render = invitation_renderer(Settings(_env_file=None))  # type: ignore[call-arg]
    code = "c" * 43
    url = f"http://127.0.0.1:8000/join/{code}"
    role = "Finance (read the charges, receipts and the card)"
    letter = InvitationLetter("<b>Acme</b>", "Ada <i>L</i>", "ann@example.com", role, url, code, 1)
    email = render(letter)
    assert email.subject == "Ada <i>L</i> invites you to join <b>Acme</b> on Micro-internships"
    assert url in email.text and role in email.text and "for 1 day." in email.text
    assert f"\n{code}\n" in email.text and "/v1/organisation/join" in email.text
    assert f'href="{url}"' in email.html and "&lt;b&gt;Acme&lt;/b&gt;" in email.html
    assert "Ada &lt;i&gt;L&lt;/i&gt;" in email.html and code in email.html
    check_html(email.html)


@pytest.mark.parametrize("count", [1, 3])
def test_a_message_email_lists_what_arrived_escaped_with_the_thread_and_how_to_reply(
    count: int,
) -> None:
    from datetime import UTC, datetime, timedelta

    from core.conversations import DueEmail, FileView, MessageView, Reader
    from core.db import Internship, Thread
    from core.emails import Templates
    from worker.message_emails import MessageEmails

    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    row = Internship(
        id="int_123", title=TITLE, company="Acme", category="marketing", stage="posted",
        fee_cents=40000, currency="usd", due_at=None,
    )  # fmt: skip
    said = [
        MessageView(
            id=n,
            author_role="launcher",
            author_name=LAUNCHER_NAME,
            body=f"Question {n} {XSS}",
            created_at=at + timedelta(minutes=n),
            via="web",
            in_dispute=False,
            hidden=False,
            mine=False,
            files=[FileView(n, "cv.pdf", "application/pdf", 2048)] if n == 1 else [],
        )  # fmt: skip
        for n in range(1, count + 1)
    ]
    due = DueEmail(
        thread=Thread(id=7, internship_id="int_123", launcher_id="lnc_1"), internship=row,
        reader=Reader("employer", "mem_1"), to_email="erin@example.com", name="Erin",
        messages=said, more=0, seq=1, preference="immediate", time_zone="UTC",
    )  # fmt: skip
    emails = MessageEmails(
        sessions=None,  # type: ignore[arg-type]
        templates=Templates(TEMPLATES_DIR),
        public_base_url="https://api.example.com/",
        quiet=timedelta(minutes=10),
        reply_address=lambda *_: "reply+x@reply.example.com",
    )
    email = Templates(TEMPLATES_DIR).render("messages", emails._context(due))
    if count == 1:
        assert email.subject == f"New message about {TITLE} from {LAUNCHER_NAME}"
    else:
        assert email.subject == f"3 new messages about {TITLE}"
    thread_url = "https://api.example.com/internships/int_123/threads/lnc_1"
    assert all(f"Question {n} {XSS}" in email.text for n in range(1, count + 1))
    assert "cv.pdf (2 KB)" in email.text and thread_url in email.text
    assert "Reply to this email to answer" in email.text and "as they arrive" in email.text
    assert XSS not in email.html and "&lt;script&gt;" in email.html
    assert f'href="{thread_url}"' in email.html
    check_html(email.html)


def test_counts_read_as_people_say_them() -> None:
    from api.rate_limits import wait_text
    from core.formats import plural

    assert [plural(n, "minute") for n in (0, 1, 2)] == ["0 minutes", "1 minute", "2 minutes"]
    assert (
        plural(1, "person", "people") == "1 person" and plural(3, "person", "people") == "3 people"
    )
    assert [wait_text(s) for s in (1, 60, 61, 3600)] == [
        "1 second",
        "1 minute",
        "2 minutes",
        "1 hour",
    ]


def test_every_event_has_a_text_and_an_html_template() -> None:
    assert template_events("txt") == set(CONTRACT)
    assert template_events("html") == set(CONTRACT)


def test_cases_cover_every_event_reason_role_and_detail_key() -> None:
    seen = {(p.values[0], p.values[1]) for p in CASES}
    assert {event for event, _ in seen} == set(CONTRACT)
    assert {role for event, role in seen if event == "overdue"} == set(ROLES)
    reminders = [p.values for p in CASES if p.values[0] == "reminder"]
    assert {details["reason"] for _, _, _, details in reminders} == set(REMINDER_REASONS)
    for reason in REMINDER_REASONS:
        roles = {role for _, role, _, details in reminders if details["reason"] == reason}
        assert roles == set(REMINDER_ROLES.get(reason, ROLES)), reason
    waiting = [d for _, _, _, d in reminders if d["reason"] == "dispute_waiting"]
    assert {d["default_outcome"] for d in waiting} == set(DEFAULT_OUTCOMES)
    opened = [p.values for p in CASES if p.values[0] == "dispute_opened"]
    assert {(role, d["opened_by"]) for _, role, _, d in opened} == set(DISPUTE_OPENED_TO)
    assert {d["default_outcome"] for _, _, _, d in opened} == set(DEFAULT_OUTCOMES)
    resolved = [p.values[3] for p in CASES if p.values[0] == "dispute_resolved"]
    assert {d["by_default"] for d in resolved} == {True, False}
    for p in CASES:
        event, details = p.values[0], p.values[3]
        required, optional = CONTRACT[event]
        assert set(details) == required | optional, p.id


def test_templates_have_the_expected_shape() -> None:
    env = make_env()
    for event in CONTRACT:
        txt_source = (EMAIL_DIR / f"{event}.txt").read_text()
        html_source = (EMAIL_DIR / f"{event}.html").read_text()
        assert txt_source.startswith('{% extends "email/base.txt" %}'), event
        assert html_source.startswith('{% extends "email/base.html" %}'), event
        assert {"subject", "body"} <= set(env.get_template(f"email/{event}.txt").blocks)
        assert "body" in env.get_template(f"email/{event}.html").blocks


def test_no_template_disables_escaping() -> None:
    for path in sorted(EMAIL_DIR.iterdir()):
        source = path.read_text().replace(" ", "")
        for forbidden in ("|safe", "autoescapefalse", "Markup("):
            assert forbidden not in source, f"{path.name} contains {forbidden!r}"


@pytest.mark.parametrize("with_optional", [True, False], ids=["full", "required-only"])
@pytest.mark.parametrize("due_at", [DUE_AT, None], ids=["due", "no-due"])
@pytest.mark.parametrize(("event", "role", "actor", "details"), CASES)
def test_renders(
    event: str,
    role: str,
    actor: str,
    details: dict[str, Any],
    due_at: str | None,
    with_optional: bool,
) -> None:
    ctx = build_context(event, role, actor, details, due_at=due_at, with_optional=with_optional)
    subject, text, html = render(make_env(), event, ctx)

    assert subject
    assert "\n" not in subject and "\r" not in subject
    assert "&amp;" not in subject and "&lt;" not in subject  # plain text, never escaped

    assert TITLE in text
    assert "&amp;" not in text and "&lt;" not in text
    assert text.rstrip().splitlines()[-1].startswith("Micro-internships")
    assert "\n\n\n" not in text

    assert str(escape(TITLE)) in html
    assert f"<title>{escape(TITLE)}</title>" in html
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html  # the recipient name, at least, carries the payload
    checker = check_html(html)
    assert checker.h1 == 1
    assert checker.hrefs, "every email links somewhere"
    for href in checker.hrefs:
        assert href.startswith("https://"), href

    for rendered in (subject, text, html):
        assert "None" not in rendered
        assert "{{" not in rendered and "{%" not in rendered


def test_applicant_pitch_is_escaped_in_html_and_verbatim_in_text() -> None:
    ctx = build_context(
        "applied", "employer", "launcher", {"launcher_name": LAUNCHER_NAME, "pitch": PITCH}
    )
    _, text, html = render(make_env(), "applied", ctx)
    assert XSS in text
    assert "Happy to start Monday! &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


def test_reminder_subjects_differ_per_reason() -> None:
    env = make_env()
    subjects = {
        reason: render(
            env,
            "reminder",
            build_context(
                "reminder", REMINDER_ROLES.get(reason, ROLES)[0], "system", {"reason": reason}
            ),
        )[0]
        for reason in REMINDER_REASONS
    }
    assert len(set(subjects.values())) == len(REMINDER_REASONS), subjects


def test_overdue_tone_differs_per_role() -> None:
    env = make_env()
    bodies = {
        role: render(env, "overdue", build_context("overdue", role, "system", {}))[1]
        for role in ROLES
    }
    assert len(set(bodies.values())) == len(ROLES)


@pytest.mark.parametrize("event", ["reminder", "payout_waiting"])
def test_payout_set_up_links_to_the_payouts_page_not_to_an_expiring_stripe_link(
    event: str,
) -> None:
    env = make_env()
    base = {"reason": "payout_onboarding"} if event == "reminder" else {}
    with_url = build_context(
        event, "launcher", "system", {**base, "onboarding_url": ONBOARDING_URL}
    )
    _, text, html = render(env, event, with_url)
    assert PAYOUTS_URL in text and f'href="{PAYOUTS_URL}"' in html
    assert ONBOARDING_URL not in text + html

    _, text, html = render(env, event, build_context(event, "launcher", "system", base))
    assert ONBOARDING_URL not in text + html
    assert f'href="{INTERNSHIP_URL}"' in html


def test_submission_link_is_not_clickable_unless_http() -> None:
    env = make_env()
    details = {"url": "javascript:alert(1)", "note": "", "round": 1}
    _, _, html = render(env, "submission", build_context("submission", "employer", "x", details))
    assert "javascript:alert(1)" in html
    assert 'href="javascript' not in html.lower()
    details["url"] = "https://drive.example.com/deliverable?id=1&v=2"
    _, _, html = render(env, "submission", build_context("submission", "employer", "x", details))
    assert 'href="https://drive.example.com/deliverable?id=1&amp;v=2"' in html


def test_strict_undefined_rejects_anything_outside_the_contract() -> None:
    env = make_env()
    ctx = build_context("selected", "launcher", "employer", {})
    # With the plain dicts the mailer passes, StrictUndefined raises on anything unknown...
    plain = {name: dict(value) for name, value in ctx.items()}
    for source in ("{{ internship.nope }}", "{{ sender }}", "{% if details.nope %}x{% endif %}"):
        with pytest.raises(UndefinedError):
            env.from_string(source).render(plain)
    # ...and the test's ContractDict also catches lookups that would silently be None.
    for source in ("{{ internship.nope }}", "{{ details.get('nope') }}"):
        with pytest.raises(AssertionError, match="not in the contract"):
            env.from_string(source).render(ctx)


@pytest.mark.parametrize(
    ("event", "key"),
    [(event, key) for event, (required, _) in CONTRACT.items() for key in sorted(required)],
)
def test_every_required_detail_is_used(event: str, key: str) -> None:
    """Dropping a required key breaks at least one rendering of the event: templates read it
    strictly (so a mailer that forgets it fails loudly instead of sending a blank)."""
    env = make_env()
    failures = 0
    cases = [p for p in CASES if p.values[0] == event]
    for p in cases:
        _, role, actor, details = p.values
        ctx = build_context(event, role, actor, {k: v for k, v in details.items() if k != key})
        try:
            render(env, event, ctx)
        except UndefinedError:
            failures += 1
    assert failures, f"{event} never uses details[{key!r}]"


# (recipient role, default outcome) -> how the email puts what happens if ops don't decide.
DEFAULT_WORDS = {
    ("ops", "pay_launcher"): "the Career Launcher is paid their share in full",
    ("ops", "refund"): "the employer's fee is refunded in full",
    ("employer", "pay_launcher"): "the Career Launcher will be paid their share in full",
    ("employer", "refund"): "your fee will be refunded in full",
    ("launcher", "pay_launcher"): "you'll be paid your share in full",
    ("launcher", "refund"): "the fee will be refunded to Northwind Labs in full",
}
DISPUTE_OPENED_CASES = [p for p in CASES if p.values[0] == "dispute_opened"]


@pytest.mark.parametrize(("event", "role", "actor", "details"), DISPUTE_OPENED_CASES)
def test_dispute_opened_says_by_when_it_is_decided_and_what_happens_by_default(
    event: str, role: str, actor: str, details: dict[str, Any]
) -> None:
    subject, text, html = render(make_env(), event, build_context(event, role, actor, details))
    default = details["default_outcome"]
    (other,) = set(DEFAULT_OUTCOMES) - {default}
    for body in (text, unescape(html)):
        assert DECIDE_BY in body
        assert DEFAULT_WORDS[(role, default)] in body
        assert DEFAULT_WORDS[(role, other)] not in body
    if role == "ops":
        assert DECIDE_BY in subject


@pytest.mark.parametrize(("event", "role", "actor", "details"), DISPUTE_OPENED_CASES)
def test_dispute_opened_without_a_deadline_reads_as_before(
    event: str, role: str, actor: str, details: dict[str, Any]
) -> None:
    """Internships started before disputes had a deadline send neither decide_by nor
    default_outcome: the email still renders, and promises no date or default."""
    old = {"opened_by": details["opened_by"], "reason": details["reason"]}
    subject, text, html = render(make_env(), event, build_context(event, role, actor, old))
    for rendered in (subject, text, unescape(html)):
        assert "decide by" not in rendered.lower() and "in time" not in rendered
        assert "at the latest" not in rendered and "by default" not in rendered
        assert "in full" not in rendered
    assert "review the project" in text


@pytest.mark.parametrize("role", ROLES)
def test_a_dispute_the_system_opened_starts_from_what_happened(role: str) -> None:
    details = {
        "opened_by": "system",
        "reason": SYSTEM_REASON,
        "decide_by": DECIDE_BY,
        "default_outcome": "pay_launcher",
    }
    subject, text, html = render(
        make_env(), "dispute_opened", build_context("dispute_opened", role, "system", details)
    )
    for rendered in (subject, text, unescape(html)):
        assert "the system" not in rendered.lower()
        assert "opened by" not in rendered.lower()
    if role == "ops":
        assert SYSTEM_REASON in subject
        for body in (text, unescape(html)):
            assert "instead of being cancelled automatically" in body
            assert SYSTEM_REASON in body
    else:
        lead = "The revision is 10 days overdue; earlier work was delivered. Rather than cancel"
        for body in (text, unescape(html)):
            assert lead in body
            assert "has opened a dispute" not in body


@pytest.mark.parametrize("default", DEFAULT_OUTCOMES)
def test_a_waiting_dispute_reminds_ops_of_the_deadline_and_the_default(default: str) -> None:
    details = {"reason": "dispute_waiting", "decide_by": DECIDE_BY, "default_outcome": default}
    subject, text, html = render(
        make_env(), "reminder", build_context("reminder", "ops", "system", details)
    )
    (other,) = set(DEFAULT_OUTCOMES) - {default}
    assert DECIDE_BY in subject and "dispute" in subject.lower()
    for body in (text, unescape(html)):
        assert "waiting for your decision" in body
        assert DECIDE_BY in body
        assert DEFAULT_WORDS[("ops", default)] in body
        assert DEFAULT_WORDS[("ops", other)] not in body
    assert f"Decide: {INTERNSHIP_URL}" in text
    # The button, besides the footer's link.
    assert html.count(f'href="{INTERNSHIP_URL}"') == 2


@pytest.mark.parametrize("outcome", DEFAULT_OUTCOMES)
@pytest.mark.parametrize("role", ["employer", "launcher"])
def test_a_dispute_resolved_by_default_says_no_decision_was_made(role: str, outcome: str) -> None:
    env = make_env()
    details = {
        "outcome": outcome,
        "launcher_amount": "$360.00",
        "refund_amount": "$400.00",
        "note": DEFAULT_NOTE,
    }
    by_default = build_context("dispute_resolved", role, "system", {**details, "by_default": True})
    subject, text, html = render(env, "dispute_resolved", by_default)
    assert subject.endswith("has been resolved by default")
    for body in (text, unescape(html)):
        assert "Our team has reviewed" not in body
        assert "while we looked into this" not in body
        assert "No decision was made on the dispute" in body and "by its deadline" in body
        assert "the default outcome" in body
        assert DEFAULT_NOTE in body and "A note from our team" not in body

    for decided in ({**details, "by_default": False}, details):
        ctx = build_context("dispute_resolved", role, "ops", decided)
        subject, text, html = render(env, "dispute_resolved", ctx)
        assert not subject.endswith("by default")
        for body in (text, unescape(html)):
            assert "Our team has reviewed the dispute" in body
            assert "No decision was made" not in body
            assert "A note from our team" in body


def test_submission_says_when_the_work_is_approved_automatically() -> None:
    details = {"url": "", "note": "", "round": 1}
    ctx = build_context("submission", "employer", "launcher", details)
    _, text, html = render(make_env(), "submission", ctx)
    assert f"If there's no response by {AUTO_APPROVE_AT}, the work will be approved" in text
    assert f"<strong>{AUTO_APPROVE_AT}</strong>, the work will be approved" in html
    # An internship whose workflow listed no deadline yet (started before the list) reads as
    # before.
    ctx = build_context("submission", "employer", "launcher", details, deadlines={})
    _, text, html = render(make_env(), "submission", ctx)
    assert "by the end of the review window, the work will be approved" in text
    assert "by the end of the review window, the work will be approved" in html


@pytest.mark.parametrize(
    ("role", "whose"), [("employer", "your fee"), ("launcher", "Northwind Labs's fee")]
)
def test_kickoff_says_when_it_is_cancelled_and_refunded(role: str, whose: str) -> None:
    ctx = build_context("kickoff", role, "employer", {"amount": "$400.00"})
    _, text, html = render(make_env(), "kickoff", ctx)
    said = f"the project will be cancelled and {whose} refunded."
    assert f"If nothing is submitted by {AUTO_CANCEL_AT}, {said}" in text
    assert f"If nothing is submitted by <strong>{AUTO_CANCEL_AT}</strong>, {said}" in html
    # No auto-cancel listed (a policy without one): the email promises none.
    ctx = build_context("kickoff", role, "employer", {"amount": "$400.00"}, deadlines={})
    _, text, html = render(make_env(), "kickoff", ctx)
    assert "cancelled" not in text and "cancelled" not in html


@pytest.mark.parametrize("role", ["employer", "launcher"])
def test_kickoff_lists_the_terms_of_the_internship_and_their_ref(role: str) -> None:
    ctx = build_context("kickoff", role, "employer", {"amount": "$400.00", "terms": TERMS})
    _, text, html = render(make_env(), "kickoff", ctx)
    assert "The terms of this internship" in text and "The terms of this internship" in html
    for label, sentence in terms_lines():
        assert f"- {label}: {sentence}" in text
        assert str(escape(sentence)) in html
    assert f"- Fee {XSS}: $400.00" in text and f"Fee {escape(XSS)}" in html
    assert "Terms ref. 0123456789abcdef" in text and "Terms ref. 0123456789abcdef" in html


def test_extension_says_the_new_auto_cancel_date() -> None:
    ctx = build_context("extended", "launcher", "employer", {})
    _, text, _ = render(make_env(), "extended", ctx)
    assert f"It is now due {DUE_AT}." in text
    assert f"If nothing is submitted by {AUTO_CANCEL_AT}, the project will be cancelled" in text


def test_the_employer_is_told_of_an_extension_with_their_calendar_moved() -> None:
    ctx = build_context("extended", "employer", "ops", {})
    _, text, html = render(make_env(), "extended", ctx)
    assert f"It is now due {DUE_AT}. The invitation attached moves it in your calendar." in text
    assert "moved by our team" in text and "your fee refunded" in text
    assert "submitted for your review" in html and "make the work shine" not in html
