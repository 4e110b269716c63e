"""The pages over the application layer: the internship page offers exactly the steps the
rulebook allows its viewer (one partial each), a form runs the workflow update it names, and
a refusal or a mistake comes back as a message with nothing lost."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core import rulebook
from core.internship import (
    Actor,
    DisputeView,
    Kickoff,
    MemberRole,
    Money,
    Role,
    Stage,
    UpcomingDeadline,
)
from core.terms import terms_in
from tests.surface.conftest import Surface

VIEWERS = ["owner", "launcher", "applicant", "ops"]
STAGES = [
    Stage.POSTED,
    Stage.MATCHED,
    Stage.IN_PROGRESS,
    Stage.IN_REVIEW,
    Stage.APPROVED,
    Stage.PAID,
    Stage.COMPLETED,
]


def beside(html: str, field: str) -> str:
    """The problem shown beside the field with id `f-<field>` ("" if none)."""
    found = re.search(rf'<span class="error-text" id="f-{field}-error">([^<]*)</span>', html)
    return found.group(1) if found else ""


def forms_on(html: str, iid: str) -> set[str]:
    return set(re.findall(rf'action="/internships/{iid}/([a-z_-]+)"', html))


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.value)
async def test_the_page_offers_exactly_the_steps_the_rulebook_allows(
    surface: Surface, stage: Stage
) -> None:
    employer, lee, ann = surface.employer(), surface.launcher(), surface.launcher("Ann")
    selected = lee if stage != Stage.POSTED else None
    due = datetime.now(UTC) + timedelta(days=3) if stage == Stage.IN_PROGRESS else None
    state = surface.internship(
        employer, stage, launcher=selected, applicants=[ann, lee], due_at=due, original_due_at=due
    )
    iid = state.posting.internship_id
    people = {
        "owner": (employer.email, Actor(Role.EMPLOYER, employer.id)),
        "launcher": (lee.email, Actor(Role.LAUNCHER, lee.id)),
        "applicant": (ann.email, Actor(Role.LAUNCHER, ann.id)),
        "ops": (surface.settings.ops_email, Actor(Role.OPS, "ops")),
    }
    for who in VIEWERS:
        email, actor = people[who]
        browser = await surface.signed_in(email)
        shown = await browser.get(f"/internships/{iid}")
        if not rulebook.can_see(state, actor):
            assert shown.status_code == 404, (who, stage)
            continue
        assert shown.status_code == 200, (who, stage, shown.text)
        allowed = {a.value for a in rulebook.allowed_actions(state, actor)}
        assert forms_on(shown.text, iid) == allowed, (who, stage)
        assert ("Applicants (" in shown.text) == rulebook.visibility(state, actor).all_applicants
        assert ("For ops" in shown.text) == (who == "ops")


async def test_the_kickoff_button_runs_the_kickoff_update(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.MATCHED, launcher=lee)
    iid = state.posting.internship_id
    surface.workflows.then[iid] = replace(state, stage=Stage.IN_PROGRESS)
    browser = await surface.signed_in(employer.email)
    page = (await browser.get(f"/internships/{iid}")).text
    assert "Kick off with Lee Launcher" in page and "Visa ending in 4242" in page
    sent = await browser.submit(
        f"/internships/{iid}", f"/internships/{iid}/kickoff", accept_terms="true"
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/internships/{iid}"
    [asked] = surface.workflows.updates(iid)
    founder = Actor(Role.EMPLOYER, employer.id, employer.id, MemberRole.ADMIN)
    assert asked.what == "kickoff" and asked.request == Kickoff(founder, terms_in(state).hash)
    assert asked.update_id and asked.update_id.startswith(f"employer:{employer.id}:web:")
    after = (await browser.get(f"/internships/{iid}")).text
    assert "Kicked off: the fee was charged and the clock is running." in after


async def test_an_employer_without_a_card_is_asked_for_one_instead_of_a_kickoff_button(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(card=False), surface.launcher()
    iid = surface.internship(employer, Stage.MATCHED, launcher=lee).posting.internship_id
    browser = await surface.signed_in(employer.email)
    page = (await browser.get(f"/internships/{iid}")).text
    assert "Add a card first." in page
    assert "kickoff" not in forms_on(page, iid)


async def test_a_step_refused_after_the_page_was_shown_is_said_on_the_page(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee)
    iid = state.posting.internship_id
    browser = await surface.signed_in(lee.email)
    html = (await browser.get(f"/internships/{iid}")).text
    assert "submissions" in forms_on(html, iid)
    # The employer cancels meanwhile: the launcher's submission finds it cancelled.
    surface.workflows.states[iid] = replace(state, stage=Stage.CANCELLED)
    sent = await browser.submit(
        f"/internships/{iid}", f"/internships/{iid}/submissions", url="https://example.com/doc"
    )
    assert sent.status_code == 409
    assert surface.workflows.updates(iid) == []
    assert (
        '<div class="flash error" role="alert">'
        "You can&#39;t submit work now: the internship was cancelled. Nothing was changed.</div>"
    ) in sent.text
    # The page shows the fresh state: the form is gone, and what was typed is still there.
    assert "submissions" not in forms_on(sent.text, iid)
    assert "https://example.com/doc" in sent.text


async def test_a_form_with_a_mistake_changes_nothing_and_says_what_to_fix(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    iid = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee).posting.internship_id
    browser = await surface.signed_in(lee.email)
    sent = await browser.submit(
        f"/internships/{iid}",
        f"/internships/{iid}/submissions",
        url="not a link",
        note="Here is the summary.",
    )
    assert sent.status_code == 422
    assert surface.workflows.updates(iid) == []
    assert beside(sent.text, "url") == "Enter a full link, starting with https://"
    assert 'value="not a link"' in sent.text and ">Here is the summary.</textarea>" in sent.text


async def test_the_posting_form_keeps_what_was_typed_beside_the_problem(surface: Surface) -> None:
    employer = surface.employer()
    browser = await surface.signed_in(employer.email)
    typed = {
        "title": "Survey of pet shops",
        "description": "Call 20 shops.",
        "category": "marketing",
        "skills": "research",
        "estimated_hours": "10",
        "duration_days": "14",
        "fee": "50",
        "currency": "usd",
    }
    refused = await browser.submit("/internships/new", "/internships/new", **typed)
    assert refused.status_code == 422
    assert "The fee must be at least $200.00: $20.00 for each of the 10 hours" in refused.text
    assert 'value="Survey of pet shops"' in refused.text
    assert surface.workflows.asked == []
    posted = await browser.submit("/internships/new", "/internships/new", **typed | {"fee": "400"})
    assert posted.status_code == 303
    [start] = surface.workflows.asked
    assert (
        start.what == "start"
        and posted.headers["location"] == f"/internships/{start.internship_id}"
    )


async def test_the_ops_queue_lists_what_the_rulebook_says_needs_ops(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    quiet = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee)
    late = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee, overdue=True)
    escalated = surface.internship(employer, Stage.MATCHED, launcher=lee, escalation_level=2)
    reminded = surface.internship(employer, Stage.MATCHED, launcher=lee, escalation_level=1)
    refused = surface.internship(employer, Stage.APPROVED, launcher=lee, payment_refused="no")
    closed = surface.internship(employer, Stage.CANCELLED, launcher=lee, overdue=True)
    browser = await surface.signed_in(surface.settings.ops_email)
    queue = (await browser.get("/ops")).text
    for state in (quiet, late, escalated, reminded, refused, closed):
        listed = f'/internships/{state.posting.internship_id}"' in queue
        needs = rulebook.needs_ops(
            state.stage,
            state.escalation_level,
            state.overdue,
            state.disputed,
            bool(state.payment_refused),
        )
        assert listed == needs, state.stage
    assert not rulebook.needs_ops(quiet.stage, 0, False, False, False)


async def test_the_employer_dashboard_says_what_needs_them(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    matched = surface.internship(employer, Stage.MATCHED, launcher=lee)
    browser = await surface.signed_in(employer.email)
    page = (await browser.get("/dashboard")).text
    assert "Kick off the project" in page
    assert f"/internships/{matched.posting.internship_id}" in page
    assert "Add a card before your first kickoff" not in page


async def test_ops_see_why_a_payment_was_refused_and_retry_it_from_the_page(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    iid = surface.internship(
        employer, Stage.APPROVED, launcher=lee, payment_refused="the account is closed"
    ).posting.internship_id
    owner = await surface.signed_in(employer.email)
    assert "payment-retry" not in forms_on((await owner.get(f"/internships/{iid}")).text, iid)
    ops = await surface.signed_in(surface.settings.ops_email)
    page = (await ops.get(f"/internships/{iid}")).text
    assert "payment-retry" in forms_on(page, iid) and "the account is closed" in page
    sent = await ops.submit(f"/internships/{iid}", f"/internships/{iid}/payment-retry")
    assert sent.status_code == 303
    assert [a.what for a in surface.workflows.updates(iid)] == ["retry_payment"]
    assert "Retrying the payment now." in (await ops.get(f"/internships/{iid}")).text


async def test_the_cancel_form_says_what_is_refunded(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    matched = surface.internship(employer, Stage.MATCHED, launcher=lee)
    charged = surface.internship(
        employer, Stage.IN_PROGRESS, launcher=lee, money=Money(charged_cents=40000)
    )
    browser = await surface.signed_in(employer.email)
    before = (await browser.get(f"/internships/{matched.posting.internship_id}")).text
    after = (await browser.get(f"/internships/{charged.posting.internship_id}")).text
    assert "Nothing has been charged." in before
    assert "The $400.00 charged is refunded." in after


AT = datetime(2026, 12, 14, 17, 0, tzinfo=UTC)


def _approves(roles: tuple[str, ...], happens: str, unless: str) -> UpcomingDeadline:
    return UpcomingDeadline("auto_approve", AT, happens, unless, roles)


async def test_the_page_says_what_happens_next_as_the_workflow_lists_it(surface: Surface) -> None:
    """Each reader reads the workflow's deadlines worded for them, with the date; someone
    outside the project reads none of the work's; the JSON view carries the same."""
    employer, lee, other = surface.employer(), surface.launcher(), surface.launcher()
    listed = [
        _approves(("employer",), "The work is approved automatically", "you request a revision"),
        _approves(
            ("launcher", "ops"),
            "Your work is approved automatically",
            "the employer requests a revision",
        ),
    ]
    iid = surface.internship(
        employer, Stage.IN_REVIEW, launcher=lee, applicants=[other], deadlines=listed
    ).posting.internship_id
    said = {
        employer.email: "The work is approved automatically on Dec 14, 2026 17:00 UTC unless "
        "you request a revision.",
        lee.email: "Your work is approved automatically on Dec 14, 2026 17:00 UTC unless "
        "the employer requests a revision.",
    }
    for email, sentence in said.items():
        page = (await (await surface.signed_in(email)).get(f"/internships/{iid}")).text
        assert "What happens next" in page
        assert sentence in re.sub(r"<[^>]+>", "", page)
    outsider = (await (await surface.signed_in(other.email)).get(f"/internships/{iid}")).text
    assert "What happens next" not in outsider and "approved automatically" not in outsider
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        detail = (await http.get(f"/v1/internships/{iid}")).json()
    assert detail["deadlines"] == [
        {
            "kind": "auto_approve",
            "at": "2026-12-14T17:00:00Z",
            "happens": "The work is approved automatically",
            "unless": "you request a revision",
            "paused": False,
        }
    ]


async def test_a_dispute_says_the_clock_is_on_hold_until_ops_decide(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    decision = UpcomingDeadline(
        "dispute_decision",
        AT,
        "You are paid your share in full",
        "ops decide the dispute first",
        ("launcher",),
        paused=True,
    )
    iid = surface.internship(
        employer,
        Stage.IN_REVIEW,
        launcher=lee,
        dispute=DisputeView(Role.EMPLOYER, "Not what we asked", AT - timedelta(days=7)),
        delivered_work_kept=True,
        deadlines=[decision],
    ).posting.internship_id
    page = (await (await surface.signed_in(lee.email)).get(f"/internships/{iid}")).text
    text = re.sub(r"<[^>]+>", "", page)
    assert "The project's other deadlines are on hold while ops decide the dispute." in text
    assert (
        "You are paid your share in full on Dec 14, 2026 17:00 UTC unless ops decide the "
        "dispute first." in text
    )
    # The dispute's own lines take the date from the same list.
    assert "decided by Dec 14, 2026 17:00 UTC at the latest" in text
