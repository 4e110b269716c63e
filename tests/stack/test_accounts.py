"""Accounts: one per email per role, who am I, token rotation, and ops reaching the parties."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.accounts import token_hash
from core.db import ApiToken, Employer, Launcher
from core.settings import Settings
from core.stripe_api import stripe_client
from dev.harness import Inbox, code_in
from tests.conftest import OPS_TOKEN, Api, eventually, unique_email
from tests.stack.test_api import ACCEPT, act, auth, employer, error_of, launcher, ok, post
from tests.stack.test_web import signed_in

OPS = auth(OPS_TOKEN)


def stripe_creations(settings: Settings, path: str) -> int:
    """Objects the local Stripe server created at `path` (idempotent replays excluded)."""
    log = httpx.get(
        f"{settings.stripe_api_base}/_test/requests", params={"path_prefix": path}
    ).json()["data"]
    return sum(1 for e in log if e["path"] == path and e["status"] == 200 and not e["replayed"])


def sign_up_body(email: str, **changes: Any) -> dict[str, Any]:
    return {"name": "Ada", "email": email, "company": "Acme", **changes}


async def codes_sent(inbox: Inbox, email: str, count: int) -> list[str]:
    """The codes of the first `count` sign-up emails to `email`."""
    return [code_in(await inbox.wait_to(email, "sign_up", n)) for n in range(count)]


async def test_one_employer_account_per_email_and_one_stripe_customer(
    api: Api, settings: Settings, inbox: Inbox
) -> None:
    """However often an address signs up, and however its codes race, it gets one account."""
    email = unique_email("ada")
    before = stripe_creations(settings, "/v1/customers")
    asked = await asyncio.gather(
        *(api.http.post("/v1/employers", json=sign_up_body(email)) for _ in range(3))
    )
    assert [r.status_code for r in asked] == [202, 202, 202]
    codes = await codes_sent(inbox, email, 3)
    exchanged = await asyncio.gather(
        *(api.http.post("/v1/tokens", json={"code": code}) for code in codes)
    )
    assert [r.status_code for r in exchanged] == [201, 201, 201]
    assert len({r.json()["id"] for r in exchanged}) == 1
    assert stripe_creations(settings, "/v1/customers") <= before + 3  # unused ones stay unused
    # Signing up again, in another case: the owner is told to sign in, with a code for it.
    again = await api.http.post("/v1/employers", json=sign_up_body(email.upper(), name="Eve"))
    assert again.status_code == 202 and again.json()["status"] == "email_sent"
    existing = await inbox.wait_to(email, "existing")
    token = await ok(await api.http.post("/v1/tokens", json={"code": code_in(existing)}), 201)
    me = await ok(await api.http.get("/v1/me", headers=auth(token["api_token"])))
    assert (me["id"], me["name"]) == (exchanged[0].json()["id"], "Ada")  # not Eve


async def test_one_launcher_account_per_email(api: Api, settings: Settings, inbox: Inbox) -> None:
    email = unique_email("lin")
    before = stripe_creations(settings, "/v1/accounts")
    body = {"name": "Lin", "email": email, "skills": []}
    assert (await api.http.post("/v1/launchers", json=body)).status_code == 202
    (code,) = await codes_sent(inbox, email, 1)
    answers = await asyncio.gather(
        *(api.http.post("/v1/tokens", json={"code": code}) for _ in range(3))
    )
    # One use of a code: the others are told it was used.
    assert sorted(r.status_code for r in answers) == [201, 410, 410]
    assert stripe_creations(settings, "/v1/accounts") == before + 1


async def test_me_says_who_the_token_belongs_to(api: Api) -> None:
    emp, lnc = await employer(api), await launcher(api)
    mine = await ok(await api.http.get("/v1/me", headers=auth(emp["api_token"])))
    assert (mine["role"], mine["id"], mine["company"]) == ("employer", emp["id"], "Acme")
    theirs = await ok(await api.http.get("/v1/me", headers=auth(lnc["api_token"])))
    assert (theirs["role"], theirs["id"]) == ("launcher", lnc["id"])

    async def payouts_enabled() -> bool:  # set when Stripe's account.updated webhook arrives
        me = await ok(await api.http.get("/v1/me", headers=auth(lnc["api_token"])))
        return bool(me["payouts_enabled"])

    assert await eventually(payouts_enabled)
    assert (await ok(await api.http.get("/v1/me", headers=OPS)))["role"] == "ops"
    error_of(await api.http.get("/v1/me"), 401)


async def test_rotating_a_token_retires_the_old_one(api: Api, sessions: sessionmaker) -> None:
    emp = await employer(api)
    old = emp["api_token"]
    fresh = (await ok(await api.http.post("/v1/me/token", headers=auth(old))))["api_token"]
    assert fresh != old
    error_of(await api.http.get("/v1/me", headers=auth(old)), 401)
    assert (await ok(await api.http.get("/v1/me", headers=auth(fresh))))["id"] == emp["id"]
    await post(api, {"api_token": fresh})  # the new token acts
    with sessions() as db:
        held = db.scalars(select(ApiToken.token_hash).where(ApiToken.account_id == emp["id"]))
        assert list(held) == [token_hash(fresh)]  # only its hash is kept
    error_of(await api.http.post("/v1/me/token", headers=OPS), 403)


async def test_ops_read_the_parties_contact_details(api: Api) -> None:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    path = f"/v1/internships/{iid}/contacts"
    before = await ok(await api.http.get(path, headers=OPS))
    assert before["employer"]["id"] == emp["id"] and before["launcher"] is None
    assert "@" in before["employer"]["email"]
    await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    after = await ok(await api.http.get(path, headers=OPS))
    assert after["launcher"]["id"] == lnc["id"]
    error_of(await api.http.get(path, headers=auth(emp["api_token"])), 403)
    error_of(await api.http.get("/v1/internships/nosuch/contacts", headers=OPS), 404)


def card_fingerprint(settings: Settings, magic: str) -> str:
    """The fingerprint Stripe gives a test card's number."""
    card = stripe_client(settings).v1.payment_methods.retrieve(magic).card
    assert card is not None and card.fingerprint
    return card.fingerprint


def fingerprints(sessions: sessionmaker, model: type[Employer] | type[Launcher], id_: str) -> Any:
    with sessions() as db:
        row = db.get(model, id_)
        assert row is not None
        if isinstance(row, Employer):
            return row.card_fingerprints
        return (row.payouts_enabled, row.payout_fingerprints)


async def test_the_cards_an_employer_attaches_are_fingerprinted(
    api: Api, settings: Settings, sessions: sessionmaker
) -> None:
    """At sign-up and on replacing the card; the first card's fingerprint is kept."""
    emp = await employer(api, card="pm_card_visa")
    visa = card_fingerprint(settings, "pm_card_visa")
    assert fingerprints(sessions, Employer, emp["id"]) == [visa]
    for card in ("pm_card_mastercard", "pm_card_mastercard"):  # the same card twice: kept once
        body = {"payment_method": card}
        headers = auth(emp["api_token"])
        await ok(await api.http.put("/v1/employers/me/payment_method", json=body, headers=headers))
    mastercard = card_fingerprint(settings, "pm_card_mastercard")
    assert fingerprints(sessions, Employer, emp["id"]) == [visa, mastercard]


async def test_a_payout_account_is_fingerprinted_when_stripe_says_it_is_ready(
    api: Api, settings: Settings, sessions: sessionmaker, inbox: Inbox
) -> None:
    """From Stripe's account.updated webhook, and when the launcher comes back from
    onboarding to the pages (before the webhook, or without it)."""
    lnc = await launcher(api, onboard=False)
    assert fingerprints(sessions, Launcher, lnc["id"]) == (False, [])
    async with httpx.AsyncClient() as stripes_page:
        page = await stripes_page.post(
            lnc["onboarding_url"], data={"card_number": "4000056655665556"}
        )
        assert page.status_code == 303
    debit = card_fingerprint(settings, "pm_card_visa_debit")

    async def recorded() -> Any:
        found = fingerprints(sessions, Launcher, lnc["id"])
        return found if found[0] else None

    assert await eventually(recorded) == (True, [debit])

    # Forget it, as if the webhook had not come yet: the return page asks Stripe.
    with sessions.begin() as db:
        row = db.get(Launcher, lnc["id"])
        assert row is not None
        row.payouts_enabled, row.payout_fingerprints, email = False, [], row.email
    ours = await signed_in(api, inbox, email)
    back = await ours.get("/onboarding/complete")
    assert back.status_code == 303 and back.headers["location"] == "/payouts"
    assert fingerprints(sessions, Launcher, lnc["id"]) == (True, [debit])
    await ours.aclose()


async def test_a_launcher_opens_their_express_dashboard_once_payouts_are_set_up(
    api: Api, sessions: sessionmaker, inbox: Inbox
) -> None:
    """The Payouts page's button and the API each get a fresh single-use login link from Stripe
    (here the local server's stand-in dashboard); before onboarding, both say to finish it."""
    lnc = await launcher(api, onboard=False)
    headers = auth(lnc["api_token"])
    with sessions() as db:
        row = db.get(Launcher, lnc["id"])
        assert row is not None
        email = row.email
    browser = await signed_in(api, inbox, email)
    try:
        page = (await browser.get("/payouts")).text
        assert "Open your Stripe Express dashboard (tax forms, payouts)" in page
        assert "/express/" not in page  # a login link is made on the click, never shown
        early = await browser.submit("/payouts", "/payouts/dashboard")
        assert early.status_code == 303 and early.headers["location"] == "/payouts"
        assert "Finish setting up payouts first" in (await browser.get("/payouts")).text
        refused = error_of(
            await api.http.post("/v1/launchers/me/dashboard_link", headers=headers), 409
        )
        assert refused["code"] == "payouts_not_set_up"
        assert "POST /v1/launchers/me/onboarding_link" in refused["message"]

        async with httpx.AsyncClient() as stripes_page:
            assert (await stripes_page.post(lnc["onboarding_url"], data={})).status_code == 303
            opened = await browser.submit("/payouts", "/payouts/dashboard")
            assert opened.status_code == 303
            url = opened.headers["location"]
            assert f"/express/{row.stripe_account_id}?link=" in url
            dashboard = await stripes_page.get(url)
            assert dashboard.status_code == 200 and "Express dashboard" in dashboard.text
            assert "tax forms" in dashboard.text
            assert (await stripes_page.get(url)).status_code == 404  # single-use

            # The API's link, a new one each time, even for a request repeated with its key.
            keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
            answers = [
                await api.http.post("/v1/launchers/me/dashboard_link", headers=keyed)
                for _ in range(2)
            ]
            assert all(a.headers["cache-control"] == "no-store" for a in answers)
            urls = [(await ok(a))["url"] for a in answers]
            assert len({url, *urls}) == 3
            assert all(f"/express/{row.stripe_account_id}?link=" in u for u in urls)
            assert (await stripes_page.get(urls[1])).status_code == 200
    finally:
        await browser.aclose()
