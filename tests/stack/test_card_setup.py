"""An employer without a card adds (and replaces) one through Stripe Checkout in setup mode: the
hosted page at the local Stripe server, its signed `checkout.session.completed` webhook to the
API, and the card on the employer's record and as their default at Stripe."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import stripe
from sqlalchemy.orm import sessionmaker

from core.accounts import create_employer
from core.db import Employer
from core.settings import Settings
from core.stripe_api import card_setup_url, stripe_client
from tests.conftest import Api, eventually, unique_email
from tests.stack.test_api import ok, signed

SUCCESS = "https://app.example/card?done=true&session={CHECKOUT_SESSION_ID}"
CANCEL = "https://app.example/card"


def fingerprints_of(sessions: sessionmaker, employer_id: str) -> list[str]:
    with sessions() as db:
        employer = db.get(Employer, employer_id)
        assert employer is not None
        return employer.card_fingerprints


def fingerprint(client: stripe.StripeClient, card_id: str) -> str:
    card = client.v1.payment_methods.retrieve(card_id).card
    assert card is not None and card.fingerprint
    return card.fingerprint


def card_of(sessions: sessionmaker, employer_id: str) -> str | None:
    with sessions() as db:
        employer = db.get(Employer, employer_id)
        assert employer is not None
        return employer.stripe_payment_method


def default_card(client: stripe.StripeClient, customer_id: str) -> str | None:
    settings = client.v1.customers.retrieve(customer_id).invoice_settings
    card = settings.default_payment_method if settings else None
    assert card is None or isinstance(card, str)
    return card


def completed_event(client: stripe.StripeClient, session_id: str) -> dict[str, Any] | None:
    """The `checkout.session.completed` event of one session, as Stripe sent it."""
    events = client.v1.events.list(params={"type": "checkout.session.completed", "limit": 100})
    response = events.last_response
    assert response is not None
    found = [
        e for e in json.loads(response.body)["data"] if e["data"]["object"]["id"] == session_id
    ]
    return found[0] if found else None


async def save_card(
    sessions: sessionmaker, client: stripe.StripeClient, employer: Employer, number: str
) -> tuple[str, str]:
    """Through Checkout as the employer's browser would; returns (session id, saved card id)."""
    before = await asyncio.to_thread(card_of, sessions, employer.id)
    url = await asyncio.to_thread(
        card_setup_url, client, employer.stripe_customer_id, SUCCESS, CANCEL, uuid.uuid4().hex
    )
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        assert page.status_code == 200 and 'name="cardNumber"' in page.text
        done = await browser.post(url, data={"cardNumber": number})
    assert done.status_code == 303, done.text
    session_id = done.headers["location"].rsplit("session=", 1)[1]
    assert done.headers["location"] == SUCCESS.replace("{CHECKOUT_SESSION_ID}", session_id)

    async def saved() -> str | None:  # once Stripe's webhook has reached the API
        card = await asyncio.to_thread(card_of, sessions, employer.id)
        return card if card and card != before else None

    return session_id, await eventually(saved)


def web_employer(sessions: sessionmaker, client: stripe.StripeClient) -> Employer:
    return create_employer(sessions, client, name="Ada", email=unique_email("ada"), company="Acme")


async def test_a_card_added_then_replaced_through_checkout(
    api: Api, settings: Settings, sessions: sessionmaker
) -> None:
    client = stripe_client(settings)
    employer = await asyncio.to_thread(web_employer, sessions, client)
    assert employer.stripe_payment_method is None
    assert await asyncio.to_thread(card_of, sessions, employer.id) is None
    assert await asyncio.to_thread(default_card, client, employer.stripe_customer_id) is None

    first_session, first = await save_card(sessions, client, employer, "4242 4242 4242 4242")
    assert await asyncio.to_thread(default_card, client, employer.stripe_customer_id) == first
    card = await asyncio.to_thread(client.v1.payment_methods.retrieve, first)
    assert card.customer == employer.stripe_customer_id and card.card and card.card.last4 == "4242"

    _, second = await save_card(sessions, client, employer, "5555 5555 5555 4444")
    assert second != first
    assert await asyncio.to_thread(default_card, client, employer.stripe_customer_id) == second
    # Both cards' fingerprints are kept (to tell who is who: core.identity).
    assert await asyncio.to_thread(fingerprints_of, sessions, employer.id) == [
        await asyncio.to_thread(fingerprint, client, first),
        await asyncio.to_thread(fingerprint, client, second),
    ]

    # Stripe delivers the first card's event again: it was handled once, so nothing changes.
    event = await asyncio.to_thread(completed_event, client, first_session)
    assert event is not None
    body = json.dumps(event).encode()
    again = await ok(await api.http.post("/v1/stripe/webhook", content=body, headers=signed(body)))
    assert again == {"status": "duplicate"}
    assert await asyncio.to_thread(card_of, sessions, employer.id) == second
    assert await asyncio.to_thread(default_card, client, employer.stripe_customer_id) == second


async def test_cancelling_checkout_leaves_no_card(
    api: Api, settings: Settings, sessions: sessionmaker
) -> None:
    client = stripe_client(settings)
    employer = await asyncio.to_thread(web_employer, sessions, client)
    url = await asyncio.to_thread(
        card_setup_url, client, employer.stripe_customer_id, SUCCESS, CANCEL, uuid.uuid4().hex
    )
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
    assert page.status_code == 200 and f'<a href="{CANCEL}">' in page.text
    # The employer follows the cancel link back to the app: nothing is sent to Stripe.
    session_id = url.rsplit("/", 1)[1]
    session = await asyncio.to_thread(client.v1.checkout.sessions.retrieve, session_id)
    assert (session.status, session.setup_intent) == ("open", None)
    # No completion event exists, so no webhook can bring a card later.
    assert await asyncio.to_thread(completed_event, client, session_id) is None
    assert await asyncio.to_thread(card_of, sessions, employer.id) is None
    assert await asyncio.to_thread(default_card, client, employer.stripe_customer_id) is None
