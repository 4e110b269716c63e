"""Accounts in a real browser, where only a browser shows it: the card page, back from Stripe
Checkout before Stripe's webhook, updates itself (static/pending.js) once the card lands."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from core.accounts import record_card
from core.db import Employer
from core.settings import Settings
from core.stripe_api import SavedCard
from dev.harness import Inbox
from tests.conftest import Api
from tests.e2e.browser import (
    SKIP_REASON,
    Pages,
    ask_for_sign_in_link,
    chromium_present,
    person,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_present(), reason=SKIP_REASON),
]


async def test_the_card_page_shows_the_card_when_the_webhook_lands_without_a_reload(
    api: Api,
    chromium: Browser,
    people: list[BrowserContext],
    inbox: Inbox,
    settings: Settings,
    sessions: sessionmaker,
) -> None:
    from tests.stack.test_web import employer_account

    pages = Pages("card")
    employer_id, email = employer_account(sessions, settings)
    with sessions.begin() as db:  # no card yet: Checkout was left, its webhook not in yet
        db.execute(
            update(Employer)
            .where(Employer.id == employer_id)
            .values(stripe_payment_method=None, card_label=None)
        )
    page = await person(chromium, people, api)
    await page.goto("/sign-in")
    await ask_for_sign_in_link(page, inbox, email)
    await page.goto("/card?done=true")  # where Checkout returns to
    await expect(page.get_by_text("Stripe is confirming your card")).to_be_visible()
    await expect(page.get_by_text("No card yet")).to_have_count(0)
    await expect(page.get_by_role("button", name="Add a card")).to_have_count(0)
    await pages.check(page, "card on its way")

    card = SavedCard("pm_card_visa", "Visa ending in 4242", None)
    with sessions.begin() as db:  # what the webhook does
        record_card(db, employer_id, card)
    # Nobody reloads: the page does, while it says the card is on its way.
    await expect(page.get_by_text("Card on file")).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("Stripe is confirming your card")).to_have_count(0)
    await pages.check(page, "card landed")
