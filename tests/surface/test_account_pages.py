"""Accounts, sign-in and the card as people meet them: no dead end after signing in from a
stale tab, no "Confirm form resubmission" after signing up, the card shown after Checkout,
a way out of a link opened as the wrong account, and words that count right."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from api.app import create_app
from api.web import accounts, session
from core.accounts import record_card, token_hash
from core.db import OutboxEmail, SignInLink, utcnow
from core.internship import Stage
from core.stripe_api import SavedCard
from tests.surface.conftest import CSRF, FORM_KEY, LINK, Browser, Surface
from tests.surface.workflows import FakeWorkflows


def expire(surface: Surface, path: str) -> None:
    """The link at `path` has expired."""
    digest = token_hash(path.rsplit("/", 1)[1])
    with surface.sessions.begin() as db:
        db.execute(
            update(SignInLink)
            .where(SignInLink.token_hash == digest)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def last_link(surface: Surface, email: str) -> tuple[str, str]:
    """The path of the newest sign-in link emailed to `email`, and that email's text."""
    with surface.sessions() as db:
        body = db.scalar(
            select(OutboxEmail.text_body)
            .where(OutboxEmail.to_email == email)
            .order_by(OutboxEmail.id.desc())
        )
    assert body, f"no email to {email}"
    found = LINK.search(body)
    assert found, body
    return httpx.URL(found.group(0)).path, body


async def use_link(browser: Browser, path: str) -> httpx.Response:
    confirm = await browser.get(path)
    token = CSRF.search(confirm.text)
    assert token, confirm.text
    return await browser.http.post(path, data={"csrf_token": token.group(1)})


async def sign_in_from(surface: Surface, browser: Browser, sign_in_page: str, email: str) -> str:
    """Sign in from the sign-in page `sign_in_page` (its `next` as it carries it); returns
    where signing in lands."""
    form = (await browser.get(sign_in_page)).text
    carried = re.search(r'name="next" value="([^"]*)"', form)
    assert carried, form
    asked = await browser.submit(
        sign_in_page, "/sign-in", email=email, next=html.unescape(carried.group(1))
    )
    assert asked.status_code == 303, asked.text
    signed = await use_link(browser, last_link(surface, email)[0])
    assert signed.status_code == 303, signed.text
    return signed.headers["location"]


# ---------------------------------------------------------------- 1. a stale tab's form


@pytest.mark.parametrize("referer", [True, False], ids=["with-referer", "no-referer"])
async def test_a_stale_tabs_form_lands_on_its_page_after_sign_in_and_says_it_was_not_sent(
    surface: Surface, referer: bool
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.POSTED, applicants=[lee])
    iid = state.posting.internship_id
    page = f"/internships/{iid}"
    browser = await surface.signed_in(lee.email)
    stale = (await browser.get(page)).text  # the tab left open
    assert f'action="{page}/withdrawal"' in stale
    # Signed out everywhere (another tab); then the stale tab's Withdraw is pressed.
    out = await browser.submit("/settings", "/sign-out/everywhere")
    assert out.status_code == 303
    form = {"csrf_token": CSRF.findall(stale)[0], "form_key": FORM_KEY.findall(stale)[0]}
    headers = {"Referer": f"{browser.http.base_url}{page}"} if referer else {}
    sent = await browser.http.post(f"{page}/withdrawal", data=form, headers=headers)
    assert sent.status_code == 303
    sign_in_page = sent.headers["location"]
    assert sign_in_page.startswith("/sign-in?")
    shown = (await browser.get(sign_in_page)).text
    assert "You&#39;re signed out, so that was not sent" in shown

    landed = await sign_in_from(surface, browser, sign_in_page, lee.email)

    assert landed == page  # the page the form was on, not its POST-only route
    after = await browser.get(landed)
    assert after.status_code == 200
    assert html.escape(session.NOT_SENT_TEXT) in after.text
    assert surface.workflows.updates(iid) == []  # nothing was done


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/internships/{iid}/withdrawal", "/internships/{iid}"),
        ("/card/confirm", "/card"),
        ("/sign-out/everywhere", "/dashboard"),
        ("/settings/tokens", "/settings"),
        ("/internships/{iid}", "/internships/{iid}"),
        ("/card?from=email", "/card?from=email"),
    ],
)
async def test_signing_in_never_lands_on_a_post_only_route(
    surface: Surface, asked: str, lands: str
) -> None:
    employer = surface.employer()
    iid = surface.internship(employer).posting.internship_id
    browser = Browser(surface.client())
    sign_in_page = session.sign_in_url(asked.format(iid=iid))
    landed = await sign_in_from(surface, browser, sign_in_page, employer.email)
    assert landed == lands.format(iid=iid)
    assert (await browser.get(landed)).status_code == 200


# ---------------------------------------------------------------- 2. sign-up and sign-in


@pytest.mark.parametrize("role", ["employer", "launcher"])
async def test_signing_up_redirects_to_a_page_saying_where_the_link_went(
    surface: Surface, role: str
) -> None:
    browser = Browser(surface.client())
    fields = {"name": "Sam Signup", "email": "sam-signup@example.com", "company": "Acme"}
    if role == "launcher":
        fields = {"name": "Sam Signup", "email": "sam-signup@example.com", "skills": "writing"}
    sent = await browser.submit(f"/sign-up/{role}", f"/sign-up/{role}", **fields)
    # A redirect: Back then Forward shows the page again, never "Confirm form resubmission".
    assert sent.status_code == 303, sent.text
    shown = await browser.get(sent.headers["location"])
    assert shown.status_code == 200
    assert "Check your email" in shown.text and "sam-signup@example.com" in shown.text
    assert "finish signing up" in shown.text


@pytest.mark.parametrize("role", ["employer", "launcher"])
async def test_a_sign_up_with_mistakes_keeps_what_was_typed(surface: Surface, role: str) -> None:
    browser = Browser(surface.client())
    sent = await browser.submit(
        f"/sign-up/{role}", f"/sign-up/{role}", name="Sam Typed", email="not-an-address"
    )
    assert sent.status_code == 422
    assert 'value="Sam Typed"' in sent.text and 'value="not-an-address"' in sent.text


async def test_asking_for_a_sign_in_link_redirects_too(surface: Surface) -> None:
    browser = Browser(surface.client())
    sent = await browser.submit("/sign-in", "/sign-in", email="who@example.com", next="/")
    assert sent.status_code == 303
    shown = await browser.get(sent.headers["location"])
    assert "Check your email" in shown.text and "who@example.com" in shown.text
    # A stranger opening the page gets the sign-in form, not someone's address.
    stranger = await Browser(surface.client()).get(sent.headers["location"])
    assert stranger.status_code == 303 and stranger.headers["location"] == "/sign-in"


# ---------------------------------------------------------------- 3. the card after Checkout


async def test_back_from_checkout_the_card_page_waits_for_the_webhook(surface: Surface) -> None:
    employer = surface.employer(card=False)
    browser = await surface.signed_in(employer.email)

    async def webhook_lands() -> None:
        await asyncio.sleep(0.6)
        card = SavedCard("pm_new_card", "Visa ending in 4242", "fp_surface")
        with surface.sessions.begin() as db:
            record_card(db, employer.id, card)

    landing, shown = await asyncio.gather(webhook_lands(), browser.get("/card?done=true"))
    assert shown.status_code == 200
    assert "Card on file" in shown.text and "Visa ending in 4242" in shown.text
    assert "confirming" not in shown.text and "No card yet" not in shown.text


async def test_a_card_still_on_its_way_is_said_so_and_nothing_contradicts_it(
    surface: Surface, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts, "CARD_WAIT", 0.5)
    employer = surface.employer(card=False)
    browser = await surface.signed_in(employer.email)
    shown = (await browser.get("/card?done=true")).text
    assert "Stripe is confirming your card: this page updates in a moment" in shown
    assert "No card yet" not in shown and "Add a card" not in shown
    # The page reloads itself while it waits: a static script (the CSP allows no inline one).
    assert "data-pending" in shown and '<script src="/static/pending.js"' in shown
    script = await browser.get("/static/pending.js")
    assert script.status_code == 200 and "data-pending" in script.text
    # Not back from Checkout: the usual page.
    usual = (await browser.get("/card")).text
    assert "No card yet" in usual and "Add a card" in usual and "data-pending" not in usual


# ---------------------------------------------------------------- 4. the wrong account


async def test_a_page_not_found_for_the_signed_in_account_offers_to_switch(
    surface: Surface,
) -> None:
    owner, other = surface.employer(), surface.employer()
    iid = surface.internship(owner).posting.internship_id
    page = f"/internships/{iid}"
    browser = await surface.signed_in(other.email)
    shown = await browser.get(page)
    assert shown.status_code == 404
    assert f"You're signed in as <strong>Erin Employer ({other.email})</strong>" in shown.text
    assert 'action="/switch-account"' in shown.text and f'value="{page}"' in shown.text

    switched = await browser.submit(page, "/switch-account", next=page)
    assert switched.status_code == 303
    assert switched.headers["location"] == session.sign_in_url(page)
    assert (await browser.get("/dashboard")).status_code == 303  # signed out
    landed = await sign_in_from(surface, browser, switched.headers["location"], owner.email)
    assert landed == page and (await browser.get(page)).status_code == 200


async def test_a_stranger_is_still_asked_to_sign_in(surface: Surface) -> None:
    iid = surface.internship(surface.employer()).posting.internship_id
    shown = await Browser(surface.client()).get(f"/internships/{iid}")
    assert shown.status_code == 303
    assert shown.headers["location"] == f"/sign-in?next=/internships/{iid}"
    unknown = await Browser(surface.client()).get("/no-such-page")
    assert unknown.status_code == 404 and "switch account" not in unknown.text


# ---------------------------------------------------------------- 5. words


async def test_every_page_and_email_says_the_link_lifetime_from_settings(surface: Surface) -> None:
    one = surface.settings.model_copy(update={"sign_in_link_minutes": 1})
    own = Surface(
        create_app(one, workflows=FakeWorkflows()), surface.workflows, surface.sessions, one
    )
    employer = own.employer()
    browser = Browser(own.client())
    form = (await browser.get("/sign-in")).text
    sent = await browser.submit("/sign-in", "/sign-in", email=employer.email, next="/")
    check = (await browser.get(sent.headers["location"])).text
    path, email = last_link(own, employer.email)
    expire(own, path)
    expired = (await browser.get(path)).text
    for shown in (form, check, email, expired):
        assert "for 1 minute." in shown, shown
        assert "1 minutes" not in shown and "15 minutes" not in shown
        assert "for a few minutes" not in shown


async def test_send_me_a_new_link_remembers_the_address(surface: Surface) -> None:
    employer = surface.employer()
    browser = Browser(surface.client())
    await browser.submit("/sign-in", "/sign-in", email=employer.email, next="/card")
    # The sign-in form, opened again in this browser, offers the address just typed.
    assert f'value="{employer.email}"' in (await browser.get("/sign-in")).text
    old, _ = last_link(surface, employer.email)
    expire(surface, old)

    # The link opened later, in another browser (a phone): no address typed there.
    phone = Browser(surface.client())
    expired = await phone.get(old)
    assert expired.status_code == 410
    masked = accounts.masked(employer.email)
    assert "Send me a new link" in expired.text and masked in expired.text
    assert employer.email not in expired.text  # as masked as the link's own page
    renewed = await phone.submit(old, f"{old}/renew")
    assert renewed.status_code == 303
    check = (await phone.get(renewed.headers["location"])).text
    assert "Check your email" in check and masked in check
    new, _ = last_link(surface, employer.email)
    assert new != old
    signed = await use_link(phone, new)
    assert signed.status_code == 303 and signed.headers["location"] == "/card"


async def test_an_unknown_link_offers_the_sign_in_form(surface: Surface) -> None:
    shown = await Browser(surface.client()).get("/sign-in/not-a-real-link-token")
    assert shown.status_code == 410
    assert 'href="/sign-in"' in shown.text and "/renew" not in shown.text
