"""Employers inviting the launchers they want: who fits a posting (with why), the invite
buttons only for members who may act, the invited launcher's banner and their decline, the
launcher's own setting, and where invitations show (dashboard, API)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from core.db import Launcher
from core.internship import (
    Actor,
    Declination,
    InternshipState,
    Invitation,
    InvitationView,
    MemberRole,
    Role,
    Stage,
    TimelineEntry,
)
from tests.surface.conftest import Surface
from tests.surface.test_internship_page import forms_on


def posting_skills() -> list[str]:
    """A posting's skills, one of them its own: only this test's launchers have both."""
    return ["research", f"pet-food-{uuid.uuid4().hex[:8]}"]


def founder(state: InternshipState) -> Actor:
    employer_id = state.posting.employer_id
    return Actor(Role.EMPLOYER, employer_id, employer_id, MemberRole.ADMIN)


def invited(state: InternshipState, launcher: Launcher, answer: str = "") -> InternshipState:
    at = datetime.now(UTC)
    view = InvitationView(launcher.id, at, state.posting.employer_id, answer)
    return replace(state, invitations=[view])


async def test_the_owner_sees_who_fits_with_the_reasons_and_invites_one(surface: Surface) -> None:
    employer, skills = surface.employer(), posting_skills()
    cara = surface.launcher("Cara Candidate", skills=skills, headline="Pet market analyst")
    state = surface.internship(employer, posting={"skills": skills})
    iid = state.posting.internship_id
    browser = await surface.signed_in(employer.email)
    page = (await browser.get(f"/internships/{iid}")).text
    assert "Invite launchers who fit" in page
    assert "Cara Candidate" in page and "Pet market analyst" in page
    assert f"2 of 2 skills: {', '.join(sorted(skills))}" in page
    sent = await browser.submit(
        f"/internships/{iid}", f"/internships/{iid}/invitations", launcher_id=cara.id
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/internships/{iid}"
    [asked] = surface.workflows.updates(iid)
    assert asked.what == "invite" and asked.request == Invitation(founder(state), cara.id)
    after = (await browser.get(f"/internships/{iid}")).text
    assert "Invitation sent: they are emailed, and their dashboard shows it." in after

    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        found = (await http.get(f"/v1/internships/{iid}/candidates")).json()
    assert found[0] == {
        "launcher_id": cara.id,
        "name": "Cara Candidate",
        "headline": "Pet market analyst",
        "score": 80,
        "reasons": [f"2 of 2 skills: {', '.join(sorted(skills))}", "no completed internships yet"],
    }
    assert len(found) <= 20


async def test_candidates_are_the_employers_and_only_while_the_posting_is_open(
    surface: Surface,
) -> None:
    employer, stranger, skills = surface.employer(), surface.employer(), posting_skills()
    cara, applied = surface.launcher("Cara", skills=skills), surface.launcher("Al", skills=skills)
    state = surface.internship(employer, applicants=[applied], posting={"skills": skills})
    state = invited(state, cara)
    surface.workflows.states[state.posting.internship_id] = state
    matched = surface.internship(employer, Stage.MATCHED, launcher=applied)
    iid = state.posting.internship_id
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        listed = (await http.get(f"/v1/internships/{iid}/candidates")).json()
        closed = await http.get(f"/v1/internships/{matched.posting.internship_id}/candidates")
    # Who applied or was invited already is not a candidate.
    assert not {cara.id, applied.id} & {c["launcher_id"] for c in listed}
    assert closed.status_code == 409 and closed.json()["error"]["details"]["stage"] == "matched"
    async with surface.client(surface.token(Role.EMPLOYER, stranger.id)) as http:
        assert (await http.get(f"/v1/internships/{iid}/candidates")).status_code == 404
    async with surface.client(surface.token(Role.LAUNCHER, cara.id)) as http:
        assert (await http.get(f"/v1/internships/{iid}/candidates")).status_code == 403


async def test_a_launcher_who_turned_invitations_off_is_refused_and_not_a_candidate(
    surface: Surface,
) -> None:
    employer, skills = surface.employer(), posting_skills()
    shy = surface.launcher("Shy Launcher", skills=skills, takes_invitations=False)
    iid = surface.internship(employer, posting={"skills": skills}).posting.internship_id
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        listed = (await http.get(f"/v1/internships/{iid}/candidates")).json()
        refused = await http.post(
            f"/v1/internships/{iid}/invitations", json={"launcher_id": shy.id}
        )
    assert shy.id not in {c["launcher_id"] for c in listed}
    words = "Shy Launcher has turned invitations off"
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_invitable"
    assert refused.json()["error"]["message"].startswith(words)
    browser = await surface.signed_in(employer.email)
    sent = await browser.submit(
        f"/internships/{iid}", f"/internships/{iid}/invitations", launcher_id=shy.id
    )
    assert sent.status_code == 409 and words in sent.text
    assert surface.workflows.updates(iid) == []


async def test_the_invited_launcher_sees_the_banner_and_declines(surface: Surface) -> None:
    employer, cara, other = surface.employer(), surface.launcher("Cara"), surface.launcher()
    state = surface.internship(employer, posting={"invitation_only": True})
    state = invited(state, cara)
    iid = state.posting.internship_id
    surface.project(state)
    surface.workflows.states[iid] = state
    surface.workflows.then[iid] = invited(state, cara, "declined")
    browser = await surface.signed_in(cara.email)
    page = (await browser.get(f"/internships/{iid}")).text
    assert "Northwind invited you to apply." in page
    assert forms_on(page, iid) == {"applications", "invitation-declined"}
    # Nobody else sees an invitation-only posting.
    uninvited = await surface.signed_in(other.email)
    assert (await uninvited.get(f"/internships/{iid}")).status_code == 404
    sent = await browser.submit(f"/internships/{iid}", f"/internships/{iid}/invitation-declined")
    assert sent.status_code == 303
    [asked] = surface.workflows.updates(iid)
    assert asked.what == "decline" and asked.request == Declination(Actor(Role.LAUNCHER, cara.id))
    after = (await browser.get(f"/internships/{iid}")).text
    assert "You declined the invitation." in after and "invited you to apply" not in after
    owner = await surface.signed_in(employer.email)
    shown = (await owner.get(f"/internships/{iid}")).text
    assert "Invited (1)" in shown and "Declined" in shown


async def test_finance_and_viewer_members_see_no_invite_buttons(surface: Surface) -> None:
    employer, skills = surface.employer(), posting_skills()
    cara = surface.launcher("Cara", skills=skills)
    iid = surface.internship(employer, posting={"skills": skills}).posting.internship_id
    for role in (MemberRole.FINANCE, MemberRole.VIEWER):
        member = surface.member(employer, role)
        browser = await surface.signed_in(member.email)
        page = (await browser.get(f"/internships/{iid}")).text
        assert "invitations" not in forms_on(page, iid) and "Invite launchers" not in page
        portfolio = (await browser.get(f"/launchers/{cara.id}")).text
        assert "Invite to apply" not in portfolio


async def test_a_portfolio_and_completed_work_invite_to_an_open_posting(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    completed = TimelineEntry(1, datetime.now(UTC), Stage.COMPLETED, "completed", Role.SYSTEM, "")
    done = surface.internship(employer, Stage.COMPLETED, launcher=lee, timeline=[completed])
    open_one = surface.internship(employer, posting={"title": "Second pet food study"})
    iid = open_one.posting.internship_id
    browser = await surface.signed_in(employer.email)
    page = (await browser.get(f"/internships/{done.posting.internship_id}")).text
    assert "Work with them again" in page and "Second pet food study" in page
    portfolio = f"/launchers/{lee.id}"
    assert "Invite to apply" in (await browser.get(portfolio)).text
    sent = await browser.submit(
        portfolio, f"/launchers/{lee.id}/invitations", internship_id=iid, back=portfolio
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/internships/{iid}"
    [asked] = surface.workflows.updates(iid)
    assert asked.what == "invite" and asked.request == Invitation(founder(open_one), lee.id)


async def test_the_launcher_finds_invitations_on_the_dashboard_and_the_api(
    surface: Surface,
) -> None:
    employer, cara = surface.employer(), surface.launcher("Cara")
    state = invited(surface.internship(employer, posting={"invitation_only": True}), cara)
    surface.project(state)
    browser = await surface.signed_in(cara.email)
    dashboard = (await browser.get("/dashboard")).text
    assert "Invitations" in dashboard and "Northwind invited you to apply to" in dashboard
    assert "Answer the invitation" in dashboard  # counted in what needs them
    async with surface.client(surface.token(Role.LAUNCHER, cara.id)) as http:
        [mine] = (await http.get("/v1/launchers/me/invitations")).json()
    assert mine["internship"]["id"] == state.posting.internship_id and mine["answer"] == ""


async def test_a_launcher_turns_invitations_off_in_settings_and_the_api(surface: Surface) -> None:
    cara = surface.launcher("Cara")
    browser = await surface.signed_in(cara.email)
    assert "Employers may invite me to apply" in (await browser.get("/settings")).text
    sent = await browser.submit("/settings", "/settings/invitations")  # the box unticked
    assert sent.status_code == 303
    assert "Employers can no longer invite you" in (await browser.get("/settings")).text
    async with surface.client(surface.token(Role.LAUNCHER, cara.id)) as http:
        me = await http.patch("/v1/launchers/me/profile", json={"takes_invitations": True})
    assert me.status_code == 200 and me.json()["takes_invitations"] is True


async def test_the_posting_form_posts_an_invitation_only_posting(surface: Surface) -> None:
    employer = surface.employer()
    browser = await surface.signed_in(employer.email)
    assert (
        "Invitation only: only launchers you invite see it"
        in (await browser.get("/internships/new")).text
    )
    sent = await browser.submit(
        "/internships/new",
        "/internships/new",
        title="Survey of pet shops",
        description="Call 20 shops.",
        category="marketing",
        skills="research",
        estimated_hours="10",
        duration_days="14",
        fee="400",
        currency="usd",
        invitation_only="true",
    )
    assert sent.status_code == 303, sent.text
    started = [a for a in surface.workflows.asked if a.what == "start"][-1]
    assert started.request.invitation_only is True
