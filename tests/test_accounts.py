"""Accounts: one per email per role, who am I, token rotation, and ops reaching the parties."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.accounts import token_hash
from core.db import Employer
from core.settings import Settings
from tests.conftest import OPS_TOKEN, Api, eventually, unique_email
from tests.test_api import act, auth, employer, error_of, launcher, ok, post

OPS = auth(OPS_TOKEN)


def stripe_creations(settings: Settings, path: str) -> int:
    """Objects the local Stripe server created at `path` (idempotent replays excluded)."""
    log = httpx.get(
        f"{settings.stripe_api_base}/_test/requests", params={"path_prefix": path}
    ).json()["data"]
    return sum(1 for e in log if e["path"] == path and e["status"] == 200 and not e["replayed"])


def sign_up_body(email: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": "Ada",
        "email": email,
        "company": "Acme",
        "payment_method": "pm_card_visa",
        **changes,
    }


async def test_one_employer_account_per_email_and_one_stripe_customer(
    api: Api, settings: Settings
) -> None:
    email = unique_email("ada")
    before = stripe_creations(settings, "/v1/customers")
    await ok(await api.http.post("/v1/employers", json=sign_up_body(email)), 201)
    again = await api.http.post("/v1/employers", json=sign_up_body(email.upper(), name="Eve"))
    assert error_of(again, 409)["code"] == "account_exists"
    # Five at once with a new address: one account, one customer at Stripe.
    racing = unique_email("race")
    answers = await asyncio.gather(
        *(api.http.post("/v1/employers", json=sign_up_body(racing)) for _ in range(5))
    )
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409, 409]
    assert stripe_creations(settings, "/v1/customers") == before + 2


async def test_one_launcher_account_per_email(api: Api, settings: Settings) -> None:
    email = unique_email("lin")
    before = stripe_creations(settings, "/v1/accounts")
    body = {"name": "Lin", "email": email, "skills": []}
    answers = await asyncio.gather(*(api.http.post("/v1/launchers", json=body) for _ in range(3)))
    assert sorted(r.status_code for r in answers) == [201, 409, 409]
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
        row = db.scalar(select(Employer).where(Employer.id == emp["id"]))
        assert row is not None and row.token_hash == token_hash(fresh)  # only its hash is kept
    error_of(await api.http.post("/v1/me/token", headers=OPS), 403)


async def test_ops_read_the_parties_contact_details(api: Api) -> None:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    path = f"/v1/internships/{iid}/contacts"
    before = await ok(await api.http.get(path, headers=OPS))
    assert before["employer"]["id"] == emp["id"] and before["launcher"] is None
    assert "@" in before["employer"]["email"]
    await act(api, lnc, iid, "applications", {"pitch": "Me"})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    after = await ok(await api.http.get(path, headers=OPS))
    assert after["launcher"]["id"] == lnc["id"]
    error_of(await api.http.get(path, headers=auth(emp["api_token"])), 403)
    error_of(await api.http.get("/v1/internships/nosuch/contacts", headers=OPS), 404)
