"""The Stripe client and the account calls the API makes: sign-up, cards, payout onboarding
and the launcher's Express dashboard.

Everything goes through the official SDK to STRIPE_API_BASE (Stripe itself, or the local
Stripe-compatible server in dev and tests). The SDK's own retries are off: the caller retries
with the same idempotency key (Temporal does, for activities).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
from stripe.params import CustomerCreateParams

from core.settings import Settings


def stripe_client(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=20),
    )


def _id(field: str | stripe.StripeObject | None) -> str | None:
    """The id of an expandable field, expanded or not."""
    return field if isinstance(field, str) or field is None else str(field["id"])


def create_customer(
    client: stripe.StripeClient, name: str, email: str, payment_method: str | None, key: str
) -> tuple[str, str | None]:
    """Create the employer's customer, with its card attached as the default when one is given
    (without one, a card is added later through Checkout); returns (customer, card) ids."""
    params: CustomerCreateParams = {"name": name, "email": email}
    if payment_method is not None:
        params["payment_method"] = payment_method
        params["invoice_settings"] = {"default_payment_method": payment_method}
    customer = client.v1.customers.create(
        params=params, options={"idempotency_key": f"signup-customer-{key}"}
    )
    if payment_method is None:
        return customer.id, None
    settings = customer.invoice_settings
    return customer.id, _id(settings.default_payment_method if settings else None) or payment_method


def _make_default(client: stripe.StripeClient, customer_id: str, card_id: str) -> str:
    """Make an attached card the one invoices and off-session payments use; returns its id."""
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card_id}}
    )
    return card_id


@dataclass(frozen=True)
class SavedCard:
    """A card attached to a customer, as the service keeps it."""

    id: str
    label: str  # how people recognise it: "Visa ending in 4242" (never the number)
    fingerprint: str | None  # Stripe's, the same for every card object of one card number


def saved_card(client: stripe.StripeClient, card_id: str) -> SavedCard:
    card = client.v1.payment_methods.retrieve(card_id).card
    if card is None:
        return SavedCard(card_id, "Card on file", None)
    return SavedCard(card_id, f"{card.brand.title()} ending in {card.last4}", card.fingerprint)


def replace_card(client: stripe.StripeClient, customer_id: str, payment_method: str) -> str:
    """Attach a new card and make it the default; returns the attached card's id."""
    card = client.v1.payment_methods.attach(payment_method, params={"customer": customer_id})
    return _make_default(client, customer_id, card.id)


def card_setup_url(
    client: stripe.StripeClient, customer_id: str, success_url: str, cancel_url: str, key: str
) -> str:
    """Stripe Checkout's hosted page (setup mode) where the customer adds or replaces a card.

    Stripe's `checkout.session.completed` webhook then says the card is saved (see
    `card_from_checkout`). `success_url` may contain `{CHECKOUT_SESSION_ID}`. One session per
    `key`: a retry with the same key gets the same page.
    """
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer_id,
            "allowed_payment_method_types": ["card"],
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        options={"idempotency_key": f"card-setup-{key}"},
    )
    if not session.url:
        raise ValueError(f"Checkout Session {session.id} has no page (status {session.status})")
    return session.url


def card_from_checkout(client: stripe.StripeClient, session_id: str) -> tuple[str, str]:
    """The card a completed setup-mode Checkout Session saved, made its customer's default;
    returns (customer, card) ids. Doing it again changes nothing."""
    session = client.v1.checkout.sessions.retrieve(session_id, params={"expand": ["setup_intent"]})
    intent = session.setup_intent
    if session.mode != "setup" or session.status != "complete" or not intent:
        raise ValueError(f"Checkout Session {session_id} has not saved a card")
    if isinstance(intent, str):  # not expanded after all
        intent = client.v1.setup_intents.retrieve(intent)
    customer_id, card_id = _id(session.customer), _id(intent.payment_method)
    if intent.status != "succeeded" or not customer_id or not card_id:
        raise ValueError(f"SetupIntent {intent.id} did not save a card for a customer")
    return customer_id, _make_default(client, customer_id, card_id)


def create_payout_account(client: stripe.StripeClient, email: str, key: str) -> str:
    account = client.v1.accounts.create(
        params={
            "type": "express",
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
        },
        options={"idempotency_key": f"signup-account-{key}"},
    )
    return account.id


def onboarding_link(client: stripe.StripeClient, account_id: str, public_base_url: str) -> str:
    done = f"{public_base_url.rstrip('/')}/onboarding/complete"
    link = client.v1.account_links.create(
        params={
            "account": account_id,
            "refresh_url": done,
            "return_url": done,
            "type": "account_onboarding",
        },
    )
    return link.url


class PayoutsNotSetUp(Exception):
    """Stripe has no Express dashboard for the account yet: its holder has not finished payout
    onboarding."""


# What a launcher reads when they ask for their dashboard too early (the page and the API).
PAYOUTS_FIRST = (
    "Finish setting up payouts first: Stripe opens your Express dashboard (tax forms, payouts) "
    "once it has your payout details."
)


def dashboard_link(client: stripe.StripeClient, account_id: str) -> str:
    """A fresh single-use link into the account's Stripe Express dashboard (payouts, tax
    forms). Links are short-lived: open it at once, never keep or show it.

    Raises PayoutsNotSetUp when Stripe refuses because onboarding is not finished (Stripe says
    so with a 400; an unknown account is a 404 and raises as it is)."""
    try:
        link = client.v1.accounts.login_links.create(account_id)
    except stripe.InvalidRequestError as refused:
        if refused.http_status == 400:
            raise PayoutsNotSetUp(refused.user_message or str(refused)) from refused
        raise
    return link.url


def payout_fingerprints(client: stripe.StripeClient, account: dict[str, Any]) -> list[str]:
    """The fingerprints of the bank accounts and debit cards an account (a plain dict, as a
    webhook carries it) pays out to: from the account itself, or listed from Stripe when it
    holds only their first page. Stripe shows them only to the platform controlling the
    account (Express, Custom); to others there are none."""
    listed = account.get("external_accounts")
    if not isinstance(listed, dict):
        return []
    found = [x for x in listed.get("data") or [] if isinstance(x, dict)]
    if listed.get("has_more"):
        pages = client.v1.accounts.external_accounts.list(account["id"], params={"limit": 100})
        found = [x.to_dict() for x in pages.auto_paging_iter()]
    return sorted({str(x["fingerprint"]) for x in found if x.get("fingerprint")})


def payouts_ready(account: stripe.Account) -> bool:
    transfers = account.capabilities.transfers if account.capabilities else None
    return bool(account.payouts_enabled) and transfers == "active"
