"""Proof of inbox before any credential (issue 14, item 1): nobody gets a token or a session for
an address they don't read, so nobody can claim an account before its owner, and accounts the
API made before this rule lose their creator's credentials when the owner shows up."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from activities.payments import Payments, PayoutRequest
from api.inbox_email import renderer
from core.accounts import create_employer, create_launcher, issue_token
from core.db import ApiToken, Employer, Launcher, OutboxEmail
from core.inbox import MAX_OPEN_LINKS, Account, send
from core.internship import Role
from core.settings import Settings
from core.stripe_api import onboarding_link, stripe_client
from dev.harness import Inbox, code_in, complete_onboarding, links_in
from tests.conftest import Api, unique_email
from tests.stack.test_api import ACCEPT, act, auth, error_of, launcher, ok, post
from tests.stack.test_web import Browser, csrf_of


async def follow_link(browser: Browser, message: Any) -> httpx.Response:
    """Open an inbox email's link and press its button; the page it lands on."""
    path = httpx.URL(next(u for u in links_in(message) if "/sign-in/" in u)).path
    confirm = await browser.get(path)
    assert confirm.status_code == 200, confirm.text
    pressed = await browser.http.post(path, data={"csrf_token": csrf_of(confirm.text)})
    assert pressed.status_code == 303, pressed.text
    return await browser.get(pressed.headers["location"])


async def test_the_pre_claim_attack_gets_the_attacker_nothing(
    api: Api, inbox: Inbox, sessions: sessionmaker, settings: Settings
) -> None:
    """The attacker signs up with the victim's address through the API; the victim later
    signs up on the web. The attacker never holds a credential, so can't charge a card."""
    victim = unique_email("victim")
    body = {"name": "Mallory", "email": victim, "company": "Evil Corp"}
    attack = await api.http.post("/v1/employers", json=body)
    assert attack.status_code == 202 and "api_token" not in attack.text
    # Nothing exists until the inbox's owner acts: no account, no Stripe customer.
    await inbox.wait_to(victim, "sign_up")
    with sessions() as db:
        assert db.scalar(select(Employer).where(Employer.email == victim)) is None
    # Guessing the code is hopeless (256 bits), and a wrong one says what to do.
    wrong = error_of(await api.http.post("/v1/tokens", json={"code": "x" * 43}), 410)
    assert wrong["code"] == "code_expired" and "sign up again" in wrong["message"]

    # The victim signs up on the web, with their own details, and confirms by the email.
    browser = Browser(api)
    form = {"name": "Vic Tim", "email": victim, "company": "Victim Inc"}
    sent = await browser.submit("/sign-up/employer", "/sign-up/employer", **form)
    assert sent.status_code == 303
    assert "Check your email" in (await browser.get(sent.headers["location"])).text
    landed = await follow_link(browser, await inbox.wait_to(victim, "sign_up", 1))
    assert landed.status_code == 200 and "Your card" in landed.text
    with sessions() as db:
        account = db.scalar(select(Employer).where(Employer.email == victim))
        assert account is not None and (account.name, account.company) == ("Vic Tim", "Victim Inc")
        assert account.inbox_proven_at is not None
        assert list(db.scalars(select(ApiToken).where(ApiToken.account_id == account.id))) == []
    # The attacker's own sign-up again: still only an email to the victim, saying they have an
    # account; the answer is the same as for a new address.
    again = await api.http.post("/v1/employers", json=body)
    fresh = await api.http.post("/v1/employers", json={**body, "email": unique_email("new")})
    assert again.status_code == fresh.status_code == 202
    assert again.json().keys() == fresh.json().keys()
    await inbox.wait_to(victim, "existing")
    await browser.http.aclose()


async def test_the_web_sign_up_answers_alike_for_known_and_new_addresses(
    api: Api, inbox: Inbox, sessions: sessionmaker, settings: Settings
) -> None:
    known = create_employer(
        sessions, stripe_client(settings), name="Kim", email=unique_email("kim"), company="K"
    )
    browser = Browser(api)
    pages = []
    for email in (known.email, unique_email("new")):
        form = {"name": "Someone", "email": email, "company": "Co"}
        sent = await browser.submit("/sign-up/employer", "/sign-up/employer", **form)
        assert sent.status_code == 303  # to the page saying so: Back, Forward resend nothing
        pages.append(await browser.get(sent.headers["location"]))
    assert [p.status_code for p in pages] == [200, 200]
    assert pages[0].text.replace(known.email, "X") == pages[1].text.replace(
        pages[1].text.split("<strong>")[1].split("</strong>")[0], "X"
    )
    # The owner hears of it, and can sign in from that email.
    landed = await follow_link(browser, await inbox.wait_to(known.email, "existing"))
    assert landed.status_code == 200
    await browser.http.aclose()


async def test_the_confirmation_page_names_the_account_it_opens(
    api: Api, inbox: Inbox, sessions: sessionmaker, settings: Settings
) -> None:
    """A forwarded link can't swap someone's session unseen: the page says whose it is."""
    mine = unique_email("owner")
    create_launcher(sessions, stripe_client(settings), name="Owen", email=mine, skills=[])
    browser = Browser(api)
    await browser.submit("/sign-in", "/sign-in", email=mine)
    message = await inbox.wait_to(mine, "sign_in")
    path = httpx.URL(next(u for u in links_in(message) if "/sign-in/" in u)).path
    page = await browser.get(path)
    assert f"{mine[0]}***@example.com" in page.text and "Career Launcher" in page.text
    assert mine not in page.text  # masked
    await browser.http.aclose()


async def test_an_api_code_gives_a_named_token_once_and_not_to_ops(
    api: Api, inbox: Inbox, settings: Settings
) -> None:
    email = unique_email("lin")
    body = {"name": "Lin", "email": email, "skills": ["research"]}
    assert (await api.http.post("/v1/launchers", json=body)).status_code == 202
    code = code_in(await inbox.wait_to(email, "sign_up"))
    issued = await ok(
        await api.http.post("/v1/tokens", json={"code": code, "token_name": "CI"}), 201
    )
    assert issued["role"] == "launcher" and issued["onboarding_url"].startswith("http")
    me = await ok(await api.http.get("/v1/me", headers=auth(issued["api_token"])))
    assert me["email"] == email
    error_of(await api.http.post("/v1/tokens", json={"code": code}), 410)  # once
    # Ops sign in with the link only; their API credential is OPS_API_TOKEN.
    browser = Browser(api)
    before = inbox.count_to(settings.ops_email, "sign_in")
    await browser.submit("/sign-in", "/sign-in", email=settings.ops_email)
    ops_mail = await inbox.wait_to(settings.ops_email, "sign_in", before)
    ops_code = httpx.URL(next(u for u in links_in(ops_mail) if "/sign-in/" in u)).path
    refused = await api.http.post("/v1/tokens", json={"code": ops_code.rsplit("/", 1)[-1]})
    assert error_of(refused, 403)["code"] == "forbidden"
    await browser.http.aclose()


def legacy(sessions: sessionmaker, model: type[Employer] | type[Launcher], id_: str) -> None:
    """As the API left an account before sign-ups needed proof of inbox (see migration 0008)."""
    values: dict[str, Any] = {"inbox_proven_at": None}
    values["card_confirmed" if model is Employer else "payout_confirmed"] = False
    with sessions.begin() as db:
        db.execute(update(model).where(model.id == id_).values(**values))


async def test_an_old_api_account_is_its_owners_once_they_sign_in(
    api: Api, inbox: Inbox, sessions: sessionmaker, settings: Settings
) -> None:
    """The creator's token stops at the owner's first email sign-in, and the card the creator
    attached is charged only after the owner says it's theirs."""
    client = stripe_client(settings)
    owner = unique_email("owner")
    employer = create_employer(
        sessions, client, name="Own", email=owner, company="Co", payment_method="pm_card_visa"
    )
    legacy(sessions, Employer, employer.id)
    creators = issue_token(sessions, Role.EMPLOYER, employer.id, "API sign-up")
    assert (await api.http.get("/v1/me", headers=auth(creators))).status_code == 200

    browser = Browser(api)
    await browser.sign_in(inbox, owner)
    error_of(await api.http.get("/v1/me", headers=auth(creators)), 401)

    # The owner's token, and a kickoff refused until the card is confirmed.
    lnc = await launcher(api)
    token = issue_token(sessions, Role.EMPLOYER, employer.id, "mine")
    iid = (await post(api, {"api_token": token}))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT})
    await act(api, {"api_token": token}, iid, "selection", {"launcher_id": lnc["id"]})
    refused = await act(api, {"api_token": token}, iid, "kickoff", ACCEPT, status=402)
    assert refused["code"] == "no_card"
    card_page = await browser.get("/card")
    assert "Is this card yours?" in card_page.text
    confirmed = await browser.submit("/card", "/card/confirm")
    assert confirmed.status_code == 303
    assert "Card on file" in (await browser.get("/card")).text
    await act(api, {"api_token": token}, iid, "kickoff", ACCEPT)
    await browser.http.aclose()


def test_an_old_payout_account_is_paid_only_once_its_owner_confirms_it(
    sessions: sessionmaker, settings: Settings
) -> None:
    client = stripe_client(settings)
    lnc = create_launcher(sessions, client, name="L", email=unique_email("lin"), skills=[])
    complete_onboarding(onboarding_link(client, lnc.stripe_account_id, settings.public_base_url))
    legacy(sessions, Launcher, lnc.id)
    payments = Payments(client, sessions, settings.public_base_url)
    request = PayoutRequest(
        internship_id="never-paid",
        launcher_id=lnc.id,
        payment_intent_id="pi_none",
        amount_cents=100,
        currency="usd",
        step="1",
    )
    waiting = payments.pay_launcher(request)
    assert waiting.transfer_id is None and waiting.onboarding_url  # asked to confirm first


async def test_codes_race_to_one_account_and_one_token_each(
    api: Api, inbox: Inbox, sessions: sessionmaker
) -> None:
    email = unique_email("race")
    body = {"name": "R", "email": email, "company": "C"}
    await asyncio.gather(*(api.http.post("/v1/employers", json=body) for _ in range(2)))
    codes = [code_in(await inbox.wait_to(email, "sign_up", n)) for n in range(2)]
    issued = await asyncio.gather(*(api.http.post("/v1/tokens", json={"code": c}) for c in codes))
    ids = {r.json()["id"] for r in issued}
    assert [r.status_code for r in issued] == [201, 201] and len(ids) == 1
    with sessions() as db:
        assert len(list(db.scalars(select(ApiToken).where(ApiToken.account_id.in_(ids))))) == 2


def test_links_asked_for_at_once_never_pass_the_limit(
    sessions: sessionmaker, settings: Settings
) -> None:
    """The emails are queued after the answers, so requests' sends overlap: still no more
    than MAX_OPEN_LINKS open links (and emails) per address."""
    client = stripe_client(settings)
    lin = create_launcher(sessions, client, name="Lin", email=unique_email("lin"), skills=[])
    account = Account(Role.LAUNCHER, lin.id, lin.name, lin.email)
    render = renderer(settings)

    def ask(_: int) -> bool:
        return send(sessions, settings, "sign_in", account, "/", render)

    with ThreadPoolExecutor(12) as pool:
        sent = list(pool.map(ask, range(12)))
    assert sent.count(True) == MAX_OPEN_LINKS
    with sessions() as db:
        emails = db.scalar(
            select(func.count()).select_from(OutboxEmail).where(OutboxEmail.to_email == lin.email)
        )
    assert emails == MAX_OPEN_LINKS
