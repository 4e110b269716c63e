"""Colleagues over the real stack: an invitation's email arrives over SMTP and its code joins
through the API served over HTTP; and on the suite's database (Postgres in CI), two admins
demoting each other at the same moment leave the organisation one admin."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from core import organisation
from core.accounts import founder_of, new_id
from core.db import Employer, Member
from core.internship import MemberRole
from dev.harness import api_sign_up, code_in
from tests.conftest import Api, unique_email
from tests.stack.test_api import auth, employer, ok

Json = dict[str, Any]


async def colleague(api: Api, admin: Json, role: str = "hiring_manager") -> Json:
    """A colleague invited by `admin` who joined with the emailed code: as
    `POST /v1/organisation/join` answers (company, member, api_token)."""
    assert api.inbox is not None
    email = unique_email("colleague")
    await ok(
        await api.http.post(
            "/v1/organisation/invitations",
            json={"email": email, "role": role},
            headers=auth(admin["api_token"]),
        ),
        201,
    )
    code = code_in(await api.inbox.wait_to(email, "colleague_invitation"))
    return await ok(
        await api.http.post("/v1/organisation/join", json={"code": code, "name": "Cam Colleague"}),
        201,
    )


async def test_a_colleague_joins_with_the_emailed_code_and_works_with_their_role(
    api: Api,
) -> None:
    admin = await employer(api)
    joined = await colleague(api, admin, role="finance")
    assert joined["company"] == "Acme" and joined["member"]["role"] == "finance"
    mine = await ok(await api.http.get("/v1/organisation", headers=auth(joined["api_token"])))
    assert {m["role"] for m in mine["members"]} == {"admin", "finance"}
    refused = await api.http.post(
        "/v1/internships", json={"title": "t"}, headers=auth(joined["api_token"])
    )
    assert (
        refused.status_code == 403
        and "Only admins and hiring managers can post" in (refused.json()["error"]["message"])
    )


def _two_admins(sessions: sessionmaker) -> tuple[str, str]:
    """An organisation (its id, its founder's member id) and its second admin's member id."""
    org = Employer(
        id=new_id(),
        name="Ada Admin",
        email=f"ada-{uuid.uuid4().hex[:8]}@example.com",
        company="Acme",
        stripe_customer_id=f"cus_{uuid.uuid4().hex[:14]}",
    )
    second = Member(
        id=new_id(),
        employer_id=org.id,
        name="Bo Admin",
        email=f"bo-{uuid.uuid4().hex[:8]}@example.com",
        role=MemberRole.ADMIN.value,
    )
    with sessions.begin() as db:
        db.add(org)
        db.flush()
        db.add_all([founder_of(org), second])
    return org.id, second.id


def test_two_admins_demoting_each_other_at_once_leave_one_admin(sessions: sessionmaker) -> None:
    for _ in range(5):  # each round a race: without the lock some round lets both through
        org_id, second = _two_admins(sessions)
        start = threading.Barrier(2)

        def demote(member_id: str, org_id: str = org_id, start: threading.Barrier = start) -> str:
            start.wait()
            try:
                organisation.change_member(sessions, org_id, member_id, MemberRole.VIEWER, None)
            except organisation.Refused as err:
                return err.code
            return "demoted"

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(demote, [org_id, second]))
        assert outcomes == ["demoted", "last_admin"]
        with sessions() as db:
            admins = db.scalar(
                select(func.count())
                .select_from(Member)
                .where(Member.employer_id == org_id, Member.role == MemberRole.ADMIN.value)
            )
        assert admins == 1


async def test_a_founder_who_was_removed_can_sign_up_a_company_anew(api: Api) -> None:
    """The company's contact address moves to an admin who stays, so the founder's address is
    free for a new company's sign-up (one company per person, not one address per company ever)."""
    assert api.inbox is not None
    founder = await employer(api)
    me = await ok(await api.http.get("/v1/me", headers=auth(founder["api_token"])))
    successor = await colleague(api, founder, role="admin")
    removed = await api.http.delete(
        f"/v1/organisation/members/{me['member_id']}", headers=auth(successor["api_token"])
    )
    await ok(removed)
    again = await api_sign_up(
        api.http,
        api.inbox,
        "employer",
        {"name": "Ada Again", "email": me["email"], "company": "Second Co"},
    )
    mine = await ok(await api.http.get("/v1/organisation", headers=auth(again["api_token"])))
    assert mine["company"] == "Second Co" and [m["email"] for m in mine["members"]] == [me["email"]]
    theirs = await ok(await api.http.get("/v1/me", headers=auth(successor["api_token"])))
    assert theirs["company"] == "Acme"
