"""Colleagues of an employer organisation as they meet it: an admin invites by email, the
invitee joins from the link (or the code, through the API) with the role they were given;
an invitation works once and not after it expired or was withdrawn; a member without a right
is told who has it; a removed member is signed out at once; the last admin stays."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from core import rulebook
from core.accounts import new_id
from core.db import ColleagueInvitation, Employer, Member, OutboxEmail, utcnow
from core.internship import MemberRole, Role, Stage
from core.rulebook import OrgRight
from tests.surface.conftest import CSRF, Browser, Surface

JOIN = re.compile(r"https?://\S+/join/(\S+)")


def address(name: str = "casey") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def invitation_email(surface: Surface, email: str) -> tuple[str, str]:
    """The secret of the newest invitation emailed to `email`, and that email's text."""
    with surface.sessions() as db:
        body = db.scalar(
            select(OutboxEmail.text_body)
            .where(OutboxEmail.to_email == email, OutboxEmail.kind == "colleague_invitation")
            .order_by(OutboxEmail.id.desc())
        )
    assert body, f"no invitation to {email}"
    found = JOIN.search(body)
    assert found, body
    return found.group(1), body


def member(
    surface: Surface, org: Employer, role: MemberRole, all_internships: bool = True
) -> Member:
    """A colleague who joined `org` with `role`."""
    row = Member(
        id=new_id(),
        employer_id=org.id,
        name=f"{role.value.title()} Person",
        email=address(role.value.replace("_", "-")),
        role=role.value,
        all_internships=all_internships,
    )
    with surface.sessions.begin() as db:
        db.add(row)
    return row


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def join(surface: Surface, secret: str, name: str = "Casey Colleague") -> httpx.Response:
    browser = Browser(surface.client())
    form = await browser.get("/sign-in")  # any page: a lapsed invitation's has no form
    token = CSRF.search(form.text)
    assert token, form.text
    return await browser.http.post(
        f"/join/{secret}", data={"csrf_token": token.group(1), "name": name}
    )


async def invite_by_api(
    surface: Surface, admin_token: str, email: str, role: str = "hiring_manager", **more: Any
) -> dict[str, Any]:
    async with surface.client(admin_token) as api:
        sent = await api.post(
            "/v1/organisation/invitations", json={"email": email, "role": role, **more}
        )
    assert sent.status_code == 201, sent.text
    answer: dict[str, Any] = sent.json()
    return answer


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


async def test_an_admin_invites_and_the_colleague_joins_from_the_emailed_link(
    surface: Surface,
) -> None:
    org = surface.employer()
    admin = await surface.signed_in(org.email)
    invitee = address()
    sent = await admin.submit(
        "/organisation", "/organisation/invitations", email=invitee.upper(), role="hiring_manager"
    )
    assert sent.status_code == 303, sent.text
    listed = text_of(await admin.get("/organisation"))
    assert f"Invitation sent to {invitee}" in listed and "Waiting to be used" in listed

    secret, body = invitation_email(surface, invitee)
    assert "Erin Employer invites you to join Northwind" in body
    assert "Hiring manager (post internships and run them)" in body
    assert f"{surface.settings.public_base_url}/join/{secret}" in body
    assert f"\n{secret}\n" in body and "/v1/organisation/join" in body

    browser = Browser(surface.client())
    for _ in range(2):  # opening the link (a mail scanner, say) spends nothing
        shown = await browser.get(f"/join/{secret}")
        assert shown.status_code == 200 and "Join Northwind as hiring manager" in shown.text
    token = CSRF.search(shown.text)
    assert token
    joined = await browser.http.post(
        f"/join/{secret}", data={"csrf_token": token.group(1), "name": "Casey Colleague"}
    )
    assert joined.status_code == 303 and joined.headers["location"] == "/dashboard"
    page = text_of(await browser.get("/organisation"))
    assert "Welcome to Northwind!" in page
    assert "Casey Colleague" in page and "Hiring manager" in page
    assert "Send the invitation" not in page  # only admins invite

    again = await join(surface, secret, "Someone Else")
    assert again.status_code == 410
    assert "This invitation was used already: ask an admin of the company" in text_of(again)


async def test_a_name_left_empty_is_asked_for_beside_the_field_and_spends_nothing(
    surface: Surface,
) -> None:
    org = surface.employer()
    invitee = address()
    await invite_by_api(surface, surface.token(Role.EMPLOYER, org.id), invitee)
    secret, _ = invitation_email(surface, invitee)
    refused = await join(surface, secret, "   ")
    assert refused.status_code == 422 and 'id="f-name-error"' in refused.text
    assert (await join(surface, secret)).status_code == 303


async def test_api_clients_join_with_the_code_once(surface: Surface) -> None:
    org = surface.employer()
    invitee = address()
    await invite_by_api(surface, surface.token(Role.EMPLOYER, org.id), invitee, role="finance")
    code, _ = invitation_email(surface, invitee)
    async with surface.client() as api:
        joined = await api.post("/v1/organisation/join", json={"code": code, "name": "Fin"})
        assert joined.status_code == 201, joined.text
        answer = joined.json()
        assert answer["company"] == "Northwind" and answer["member"]["role"] == "finance"
        mine = await api.get("/v1/organisation", headers=auth(answer["api_token"]))
        assert mine.json()["you"]["email"] == invitee
        assert mine.json()["card_label"] == "Visa ending in 4242"  # finance reads the card
        again = await api.post("/v1/organisation/join", json={"code": code, "name": "Fin"})
    assert again.status_code == 410 and "used already" in again.json()["error"]["message"]


async def test_expired_and_withdrawn_invitations_say_to_ask_for_a_new_one(
    surface: Surface,
) -> None:
    org = surface.employer()
    token = surface.token(Role.EMPLOYER, org.id)
    late, withdrawn = address("late"), address("withdrawn")
    await invite_by_api(surface, token, late)
    sent = await invite_by_api(surface, token, withdrawn)
    with surface.sessions.begin() as db:
        db.execute(
            update(ColleagueInvitation)
            .where(ColleagueInvitation.email == late)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    async with surface.client(token) as api:
        gone = await api.delete(f"/v1/organisation/invitations/{sent['id']}")
        assert gone.status_code == 200 and gone.json()["revoked_at"]
        waiting = (await api.get("/v1/organisation/invitations")).json()
    assert waiting == []
    for email, reason in ((late, "has expired"), (withdrawn, "was withdrawn")):
        secret, _ = invitation_email(surface, email)
        shown = await Browser(surface.client()).get(f"/join/{secret}")
        assert shown.status_code == 410
        assert f"This invitation {reason}: ask an admin of the company for a new one" in (
            text_of(shown)
        )
        refused = await join_by_code(surface, secret)
        assert refused.status_code == 410 and reason in refused.json()["error"]["message"]


async def join_by_code(surface: Surface, code: str) -> httpx.Response:
    async with surface.client() as api:
        return await api.post("/v1/organisation/join", json={"code": code, "name": "Late"})


async def test_one_company_per_person_and_no_second_invitation_to_a_member(
    surface: Surface,
) -> None:
    org, other = surface.employer(), surface.employer()
    async with surface.client(surface.token(Role.EMPLOYER, org.id)) as api:
        elsewhere = await api.post(
            "/v1/organisation/invitations", json={"email": other.email, "role": "viewer"}
        )
        here = await api.post(
            "/v1/organisation/invitations", json={"email": org.email, "role": "viewer"}
        )
    assert elsewhere.status_code == 409
    assert (
        "belongs to another company's account: they must leave it first"
        in (elsewhere.json()["error"]["message"])
    )
    assert (
        here.status_code == 409
        and "already a member of Northwind" in (here.json()["error"]["message"])
    )
    admin = await surface.signed_in(org.email)
    refused = await admin.submit(
        "/organisation", "/organisation/invitations", email=other.email, role="viewer"
    )
    assert refused.status_code == 409
    assert 'id="f-email-error"' in refused.text and other.email in refused.text


async def test_a_finance_member_reads_but_may_not_post_or_change_the_card(
    surface: Surface,
) -> None:
    org = surface.employer()
    finance = member(surface, org, MemberRole.FINANCE)
    async with surface.client(surface.token(Role.EMPLOYER, finance.id)) as api:
        posted = await api.post("/v1/internships", json={"title": "x"})
        card = await api.put(
            "/v1/employers/me/payment_method", json={"payment_method": "pm_card_visa"}
        )
        invited = await api.post(
            "/v1/organisation/invitations", json={"email": address(), "role": "viewer"}
        )
        read = await api.get("/v1/organisation")
    for refused, right in ((posted, OrgRight.POST), (card, OrgRight.CARD)):
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == rulebook.lacking(right)
    assert invited.status_code == 403 and invited.json()["error"]["details"]["needs"] == "members"
    assert read.status_code == 200 and read.json()["you"]["role"] == "finance"

    browser = await surface.signed_in(finance.email)
    for path in ("/card", "/internships/new"):
        sent_back = await browser.get(path)
        assert sent_back.status_code == 303 and sent_back.headers["location"] == "/dashboard"
    dashboard = text_of(await browser.get("/dashboard"))
    assert rulebook.lacking(OrgRight.CARD) in dashboard
    page = text_of(await browser.get("/organisation"))
    assert "Visa ending in 4242" in page and "only admins change it" in page
    assert 'href="/card"' not in page and "Send the invitation" not in page
    forged = await browser.submit(
        "/organisation", "/organisation/invitations", email=address(), role="admin"
    )
    assert forged.status_code == 303 and forged.headers["location"] == "/dashboard"
    with surface.sessions() as db:
        assert (
            db.scalar(select(ColleagueInvitation).where(ColleagueInvitation.employer_id == org.id))
            is None
        )


async def test_a_removed_member_is_signed_out_and_their_token_refused_at_once(
    surface: Surface,
) -> None:
    org = surface.employer()
    leaving = member(surface, org, MemberRole.HIRING_MANAGER)
    token = surface.token(Role.EMPLOYER, leaving.id)
    theirs = await surface.signed_in(leaving.email)
    assert (await theirs.get("/organisation")).status_code == 200
    admin = await surface.signed_in(org.email)
    removed = await admin.submit("/organisation", f"/organisation/members/{leaving.id}/remove")
    assert removed.status_code == 303
    assert "is removed: they are signed out everywhere" in text_of(await admin.get("/organisation"))
    asked = await theirs.get("/organisation")
    assert asked.status_code == 303 and asked.headers["location"].startswith("/sign-in")
    async with surface.client(token) as api:
        assert (await api.get("/v1/organisation")).status_code == 401
    async with surface.client(surface.token(Role.EMPLOYER, org.id)) as api:
        listed = (await api.get("/v1/organisation")).json()
    assert [m["id"] for m in listed["members"]] == [org.id]


async def test_the_last_admin_can_not_be_demoted_removed_or_leave(surface: Surface) -> None:
    org = surface.employer()
    async with surface.client(surface.token(Role.EMPLOYER, org.id)) as api:
        demoted = await api.patch(f"/v1/organisation/members/{org.id}", json={"role": "viewer"})
        left = await api.delete(f"/v1/organisation/members/{org.id}")
    assert demoted.status_code == 409 and demoted.json()["error"]["code"] == "last_admin"
    assert (
        "is the last admin of Northwind: make another member an admin first"
        in (demoted.json()["error"]["message"])
    )
    assert left.status_code == 409
    assert "You're the last admin of Northwind" in left.json()["error"]["message"]

    admin = await surface.signed_in(org.email)
    refused = await admin.submit("/organisation", f"/organisation/members/{org.id}", role="viewer")
    assert refused.status_code == 409
    assert "make another member an admin first" in text_of(refused)
    assert 'value="viewer" selected' in refused.text  # as typed

    second = member(surface, org, MemberRole.ADMIN)
    async with surface.client(surface.token(Role.EMPLOYER, org.id)) as api:
        now_viewer = await api.patch(f"/v1/organisation/members/{org.id}", json={"role": "viewer"})
        assert now_viewer.status_code == 200 and now_viewer.json()["role"] == "viewer"
    async with surface.client(surface.token(Role.EMPLOYER, second.id)) as api:
        last = await api.delete(f"/v1/organisation/members/{second.id}")
    assert last.status_code == 409


async def test_a_hiring_manager_acts_on_all_internships_or_only_their_own(
    surface: Surface,
) -> None:
    org = surface.employer()
    manager = member(surface, org, MemberRole.HIRING_MANAGER)
    path = f"/v1/organisation/members/{manager.id}"
    async with surface.client(surface.token(Role.EMPLOYER, org.id)) as api:
        own = await api.patch(path, json={"all_internships": False})
        assert own.json()["all_internships"] is False
        async with surface.client(surface.token(Role.EMPLOYER, manager.id)) as theirs:
            assert (await theirs.get("/v1/organisation")).json()["you"]["all_internships"] is False
        assert (await api.patch(path, json={"all_internships": True})).json()["all_internships"]
    admin = await surface.signed_in(org.email)
    changed = await admin.submit(
        "/organisation", f"/organisation/members/{manager.id}", role="hiring_manager", own_only="1"
    )
    assert changed.status_code == 303
    assert "post internships and run the ones they post" in text_of(
        await admin.get("/organisation")
    )
    with surface.sessions() as db:
        assert db.get(Member, manager.id).all_internships is False  # type: ignore[union-attr]


async def test_only_an_organisation_s_own_members_and_invitations_are_found(
    surface: Surface,
) -> None:
    org, other = surface.employer(), surface.employer()
    colleague = member(surface, org, MemberRole.VIEWER)
    sent = await invite_by_api(surface, surface.token(Role.EMPLOYER, org.id), address())
    async with surface.client(surface.token(Role.EMPLOYER, other.id)) as api:
        for response in (
            await api.patch(f"/v1/organisation/members/{colleague.id}", json={"role": "admin"}),
            await api.delete(f"/v1/organisation/members/{colleague.id}"),
            await api.delete(f"/v1/organisation/invitations/{sent['id']}"),
        ):
            assert response.status_code == 404, response.text
    async with surface.client(surface.token(Role.EMPLOYER, colleague.id)) as api:
        removing = await api.delete(f"/v1/organisation/members/{org.id}")
        leaving = await api.delete(f"/v1/organisation/members/{colleague.id}")
    assert removing.status_code == 403
    assert removing.json()["error"]["message"] == rulebook.lacking(OrgRight.MEMBERS)
    assert leaving.status_code == 200 and leaving.json()["removed_at"]


async def test_the_shared_inbox_is_an_address_or_nothing(surface: Surface) -> None:
    org = surface.employer()
    async with surface.client(surface.token(Role.EMPLOYER, org.id)) as api:
        bad = await api.patch("/v1/organisation", json={"notify_email": "not an address"})
        assert bad.status_code == 422
        good = await api.patch("/v1/organisation", json={"notify_email": "Hiring@Example.com"})
        assert good.json()["notify_email"] == "hiring@example.com"
    admin = await surface.signed_in(org.email)
    typed = await admin.submit("/organisation", "/organisation/notify", notify_email="nope")
    assert typed.status_code == 422
    assert 'id="f-notify_email-error"' in typed.text and 'value="nope"' in typed.text
    cleared = await admin.submit("/organisation", "/organisation/notify", notify_email="")
    assert cleared.status_code == 303
    with surface.sessions() as db:
        assert db.get(Employer, org.id).notify_email is None  # type: ignore[union-attr]


async def test_the_dashboard_shows_the_company_s_internships_or_mine_and_my_to_dos(
    surface: Surface,
) -> None:
    """A hiring manager reads every internship of the company, or only those they posted;
    a colleague's internship waiting for a kickoff is not on their to-do list when they may
    act only on their own, and a viewer has no to-dos at all."""
    org, lee = surface.employer(), surface.launcher()
    hana = surface.member(org, MemberRole.HIRING_MANAGER, name="Hana Hiring")
    viewer = surface.member(org, MemberRole.VIEWER, name="Vic Viewer")
    with surface.sessions.begin() as db:
        db.execute(update(Member).where(Member.id == hana.id).values(all_internships=False))
    hers = surface.internship(org, Stage.MATCHED, launcher=lee, posting={"posted_by": hana.id})
    surface.internship(
        org, Stage.MATCHED, launcher=lee, posting={"title": "The founder's own project"}
    )
    browser = await surface.signed_in(hana.email)
    everything = text_of(await browser.get("/dashboard"))
    assert hers.posting.title in everything and "The founder's own project" in everything
    mine = text_of(await browser.get("/dashboard?mine=true"))
    assert "The founder's own project" not in mine
    todo = mine.split("Needs you", 1)[1].split("Matched", 1)[0]
    assert "Kick off the project" in todo
    whole_todo = everything.split("Needs you", 1)[1]
    assert whole_todo.count("Kick off the project") == 1  # hers, not the founder's
    onlooker = text_of(await (await surface.signed_in(viewer.email)).get("/dashboard"))
    assert "Nothing needs you right now." in onlooker

    async with surface.client(surface.token(Role.EMPLOYER, hana.id)) as api:
        listed = (await api.get("/v1/internships", params={"posted_by": hana.id})).json()
    assert [i["id"] for i in listed["items"]] == [hers.posting.internship_id]
