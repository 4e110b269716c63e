"""The Stripe client and the account calls the API makes at sign-up.

Everything goes through the official SDK to STRIPE_API_BASE (Stripe itself, or the local
Stripe-compatible server in dev and tests). The SDK's own retries are off: the caller retries
with the same idempotency key (Temporal does, for activities).
"""

from __future__ import annotations

import stripe

from core.settings import Settings


def stripe_client(settings: Settings) -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=20),
    )


def create_customer(
    client: stripe.StripeClient, name: str, email: str, payment_method: str, key: str
) -> tuple[str, str]:
    """Create the employer's customer with its card attached; returns (customer, card) ids."""
    customer = client.v1.customers.create(
        params={
            "name": name,
            "email": email,
            "payment_method": payment_method,
            "invoice_settings": {"default_payment_method": payment_method},
        },
        options={"idempotency_key": f"signup-customer-{key}"},
    )
    card = customer.invoice_settings.default_payment_method if customer.invoice_settings else None
    card_id = card if isinstance(card, str) else card.id if card else payment_method
    return customer.id, card_id


def replace_card(client: stripe.StripeClient, customer_id: str, payment_method: str) -> str:
    """Attach a new card and make it the default; returns the attached card's id."""
    card = client.v1.payment_methods.attach(payment_method, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    return card.id


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


def payouts_ready(account: stripe.Account) -> bool:
    transfers = account.capabilities.transfers if account.capabilities else None
    return bool(account.payouts_enabled) and transfers == "active"
