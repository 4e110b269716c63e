"""Nobody hires themselves: the same person as employer and as launcher (one mailbox, or one
card or bank account at Stripe) cannot apply to, be selected for, or rate their own company's
postings, through the API or the pages; different people go on as before."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from api.service.workflows import handle
from core.identity import Identity, mailbox, same_person
from core.internship import Actor, Application, Role, Selection
from dev.harness import Inbox, api_sign_up
from tests.conftest import Api, eventually, unique_email
from tests.stack.test_api import ACCEPT, act, auth, employer, launcher, ok, post, until_stage
from tests.stack.test_web import signed_in
from workflows.internship import InternshipWorkflow

Json = dict[str, Any]
DEBIT_CARD = "4000 0566 5566 5556"  # a Visa debit card Stripe's test mode pays out to


def mailboxes() -> tuple[str, str, str]:
    """Three ways to write one mailbox: tagged for work, tagged for internships, and shouting."""
    person = f"ada.king-{uuid.uuid4().hex[:8]}"
    return (
        f"{person}+boss@Example.COM",
        f"{person}+intern@example.com",
        f"{person.upper()}@example.com",
    )


async def employer_as(api: Api, email: str, card: str = "pm_card_visa") -> Json:
    assert api.inbox is not None
    body = {"name": "Ada King", "email": email, "company": "Acme"}
    return await api_sign_up(api.http, api.inbox, "employer", body, card=card)


async def launcher_as(api: Api, email: str, payout: dict[str, str] | None = None) -> Json:
    """Signed up and through payout onboarding (Stripe's test bank account unless `payout`
    names another destination), once Stripe's webhook has said so."""
    body = {"name": "Ada K.", "email": email, "skills": ["research"]}
    assert api.inbox is not None
    lnc = await api_sign_up(api.http, api.inbox, "launcher", body)
    async with httpx.AsyncClient() as stripes_page:
        done = await stripes_page.post(lnc["onboarding_url"], data=payout or {})
        assert done.status_code == 303, done.text

    async def ready() -> bool:
        me = await ok(await api.http.get("/v1/me", headers=auth(lnc["api_token"])))
        return bool(me["payouts_enabled"])

    await eventually(ready)
    return lnc


async def applicants(api: Api, emp: Json, iid: str) -> list[str]:
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=auth(emp["api_token"])))
    return [a["launcher_id"] for a in detail["applicants"]]


async def applied_behind_the_apis_back(env: WorkflowEnvironment, iid: str, lnc: Json) -> None:
    """An application the API never checked (sent before the check existed, or by another
    path straight to the workflow)."""
    await handle(env.client, iid).execute_update(
        InternshipWorkflow.apply, Application(Actor(Role.LAUNCHER, lnc["id"]), "It's me")
    )


def test_one_mailbox_and_one_card_are_one_person() -> None:
    assert mailbox("  Ada.King+Boss@Example.COM ") == "ada.king@example.com"
    assert mailbox("+only@example.com") == "+only@example.com"
    assert mailbox("no-at-sign") == "no-at-sign"
    boss = Identity.of(["ada+boss@example.com"], ["card-fp"])
    assert same_person(boss, Identity.of(["ADA@example.com"]))
    assert same_person(boss, Identity.of(["lin@example.com"], ["bank-fp", "card-fp"]))
    assert not same_person(boss, Identity.of(["adam@example.com"], ["bank-fp"]))
    assert not same_person(Identity.of([""], [""]), Identity.of([""], [""]))


async def test_the_same_mailbox_cannot_apply_and_an_honest_launcher_can(api: Api) -> None:
    boss, intern, shouting = mailboxes()
    emp = await employer_as(api, boss)
    iid = (await post(api, emp))["id"]
    for email in (intern, shouting):
        lnc = await launcher_as(api, email)
        refused = await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT}, status=403)
        assert refused["code"] == "own_posting" and refused["details"] == {"action": "applications"}
        assert refused["message"].startswith("You can't apply to a posting of your own company")
        assert "Apply to other companies' postings" in refused["message"]
    honest = await launcher(api)
    await act(api, honest, iid, "applications", {"pitch": "I research well", **ACCEPT})
    assert await applicants(api, emp, iid) == [honest["id"]]  # nothing else reached the workflow
    assert (await act(api, emp, iid, "selection", {"launcher_id": honest["id"]}))["stage"] == (
        "matched"
    )


async def test_an_employer_cannot_select_themselves(api: Api, env: WorkflowEnvironment) -> None:
    boss, intern, _ = mailboxes()
    emp = await employer_as(api, boss)
    iid = (await post(api, emp))["id"]
    lnc = await launcher_as(api, intern)
    await applied_behind_the_apis_back(env, iid, lnc)
    refused = await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]}, status=403)
    assert refused["code"] == "own_posting"
    assert refused["message"].startswith("You can't select this applicant")
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=auth(emp["api_token"])))
    assert (detail["stage"], detail["launcher_id"]) == ("posted", None)


async def test_the_same_card_cannot_apply_or_be_selected(api: Api) -> None:
    """The employer's saved card is the launcher's payout card: the same person, whatever the
    emails say; found when either side's card becomes known."""
    emp = await employer(api, card="pm_card_visa_debit")
    iid = (await post(api, emp))["id"]
    lnc = await launcher_as(api, unique_email("lin"), {"card_number": DEBIT_CARD})
    refused = await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT}, status=403)
    assert refused["code"] == "own_posting"

    # A launcher paid to a bank account applies; then the employer saves that person's card.
    other = await employer(api, card="pm_card_visa")
    later = (await post(api, other))["id"]
    honest = await launcher_as(api, unique_email("lin"))
    await act(api, honest, later, "applications", {"pitch": "Me", **ACCEPT})
    await act(api, lnc, later, "applications", {"pitch": "Me", **ACCEPT})
    headers = auth(other["api_token"])
    body = {"payment_method": "pm_card_visa_debit"}
    await ok(await api.http.put("/v1/employers/me/payment_method", json=body, headers=headers))
    refused = await act(api, other, later, "selection", {"launcher_id": lnc["id"]}, status=403)
    assert refused["code"] == "own_posting"
    chosen = await act(api, other, later, "selection", {"launcher_id": honest["id"]})
    assert (chosen["stage"], chosen["launcher_id"]) == ("matched", honest["id"])


async def test_the_same_person_cannot_rate_their_own_internship(
    api: Api, env: WorkflowEnvironment
) -> None:
    """Matched behind the API's back, the work done and paid: neither side's rating counts."""
    boss, intern, _ = mailboxes()
    emp = await employer_as(api, boss)
    iid = (await post(api, emp))["id"]
    lnc = await launcher_as(api, intern)
    await applied_behind_the_apis_back(env, iid, lnc)
    await handle(env.client, iid).execute_update(
        InternshipWorkflow.select, Selection(Actor(Role.EMPLOYER, emp["id"]), lnc["id"])
    )
    await act(api, emp, iid, "kickoff", ACCEPT)
    submission = {"url": "https://docs.test/deck", "note": "Done"}
    await act(api, lnc, iid, "submissions", submission)
    await act(api, emp, iid, "review", {"decision": "approve", "feedback": "Great"})
    await until_stage(api, emp, iid, "paid")
    for who in (emp, lnc):
        refused = await act(api, who, iid, "feedback", {"rating": 5, "comment": "!"}, status=403)
        assert refused["code"] == "own_posting"
        assert refused["message"].startswith("You can't rate this internship")
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=auth(emp["api_token"])))
    assert detail["stage"] == "paid" and not detail["ratings"]


async def test_the_pages_say_why_and_change_nothing(
    api: Api, env: WorkflowEnvironment, inbox: Inbox
) -> None:
    boss, intern, _ = mailboxes()
    emp = await employer_as(api, boss)
    iid = (await post(api, emp))["id"]
    lnc = await launcher_as(api, intern)
    page = f"/internships/{iid}"

    as_launcher = await signed_in(api, inbox, intern)
    sent = await as_launcher.submit(
        page, f"{page}/applications", pitch="It's me", accept_terms="true"
    )
    # Refused: the page as it is, saying why, with the pitch kept.
    assert sent.status_code == 403
    shown = sent.text
    assert "It&#39;s me" in shown
    assert 'class="flash error"' in shown and "apply to a posting of your own company" in shown
    assert await applicants(api, emp, iid) == []
    await as_launcher.aclose()

    await applied_behind_the_apis_back(env, iid, lnc)
    as_employer = await signed_in(api, inbox, boss.lower())
    sent = await as_employer.submit(page, f"{page}/selection", launcher_id=lnc["id"])
    assert sent.status_code == 403
    shown = sent.text
    assert 'class="flash error"' in shown and "select this applicant" in shown
    assert "Charge $400.00 and kick off" not in shown  # still posted
    await as_employer.aclose()
