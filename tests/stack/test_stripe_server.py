"""The local Stripe server, driven only through the official SDK (plus httpx for its test controls
and the hosted pages), as the service itself drives it."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from stripe.params import CustomerCreateParams, TransferCreateParams

from core.stripe_api import payout_fingerprints
from dev.stripe_server import create_app

# Stripe's own published example of each resource (from github.com/stripe/openapi).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe_objects.json"
API_KEY = "sk_test_local"
WEBHOOK_SECRET = "whsec_test_secret"


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run `app` under uvicorn on a free loopback port in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def sdk(url: str, api_key: str = API_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": url}, max_network_retries=0)


def raw(obj: stripe.StripeObject) -> dict[str, Any]:
    """The JSON the server sent for an SDK call, exactly as received."""
    response = obj.last_response
    assert response is not None
    return json.loads(response.body)


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[str]:
    with serve(create_app()) as url:
        yield url


@pytest.fixture
def client(stripe_server: str) -> stripe.StripeClient:
    httpx.post(f"{stripe_server}/_test/reset").raise_for_status()
    return sdk(stripe_server)


def paid_intent(
    client: stripe.StripeClient, amount: int = 10_000, group: str = "g1", customer: str = ""
) -> dict:
    """A card payment the way the service takes one: a saved card, charged off-session (by a new
    customer unless `customer` is given)."""
    if not customer:
        customer = client.v1.customers.create(params={"payment_method": "pm_card_visa"}).id
    intent = client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "customer": customer,
            "payment_method": "pm_card_visa",
            "allowed_payment_method_types": ["card"],
            "confirm": True,
            "off_session": True,
            "transfer_group": group,
        }
    )
    return raw(intent)


def onboarded_account(client: stripe.StripeClient) -> str:
    account = client.v1.accounts.create(
        params={"type": "express", "capabilities": {"transfers": {"requested": True}}}
    )
    link = client.v1.account_links.create(
        params={"account": account.id, "type": "account_onboarding"}
    )
    httpx.post(link.url).raise_for_status()
    return account.id


def test_customer_with_attached_cards(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(
        params={
            "name": "Ada",
            "email": "ada@example.com",
            "metadata": {"user_id": "42"},
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    default = raw(customer)["invoice_settings"]["default_payment_method"]
    assert default.startswith("pm_") and default != "pm_card_visa"
    assert raw(customer)["metadata"] == {"user_id": "42"}
    card = raw(client.v1.payment_methods.retrieve(default))
    assert card["customer"] == customer.id
    assert (card["card"]["brand"], card["card"]["last4"]) == ("visa", "4242")

    other = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer.id})
    assert other.id.startswith("pm_") and raw(other)["card"]["brand"] == "mastercard"
    assert client.v1.customers.retrieve(customer.id).email == "ada@example.com"

    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.create(params={"payment_method": "pm_nope"})
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert missing.value.param == "payment_method"


def test_confirmed_payment_intent_charges_the_card(client: stripe.StripeClient) -> None:
    intent = paid_intent(client, 12_345, "project-7")
    assert intent["status"] == "succeeded" and intent["amount_received"] == 12_345
    charge = raw(
        client.v1.charges.retrieve(
            intent["latest_charge"], params={"expand": ["balance_transaction"]}
        )
    )
    assert charge["paid"] and charge["status"] == "succeeded"
    assert charge["transfer_group"] == "project-7" and charge["payment_intent"] == intent["id"]
    money = charge["balance_transaction"]
    assert money["amount"] == 12_345 and money["net"] == 12_345 - money["fee"]
    assert client.v1.payment_intents.retrieve(intent["id"]).status == "succeeded"


def test_declined_card_raises_card_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(
            params={
                "amount": 5_000,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "allowed_payment_method_types": ["card"],
                "confirm": True,
            }
        )
    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    body = declined.value.json_body
    assert isinstance(body, dict)
    error = body["error"]
    assert (error["type"], error["decline_code"]) == ("card_error", "generic_decline")
    assert error["payment_intent"]["status"] == "requires_payment_method"
    intent = raw(client.v1.payment_intents.retrieve(error["payment_intent"]["id"]))
    assert intent["last_payment_error"]["code"] == "card_declined"


def test_invalid_requests_are_refused_like_stripe(
    client: stripe.StripeClient, stripe_server: str
) -> None:
    cases: list[tuple[Any, str | None, str]] = [
        ({"amount": 10, "currency": "usd"}, "amount_too_small", "amount"),
        ({"amount": 1_000}, "parameter_missing", "currency"),
        ({"amount": "ten", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 1_000, "currency": "usd", "colour": "red"}, "parameter_unknown", "colour"),
        # The SDK's API version (2026-10-28.endive) no longer accepts payment_method_types.
        (
            {"amount": 1_000, "currency": "usd", "payment_method_types": ["card"]},
            "payment_method_types_no_longer_supported",
            "payment_method_types",
        ),
        # Dynamic payment methods may redirect, so confirming them needs a return_url.
        (
            {"amount": 1_000, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"},
            None,
            "return_url",
        ),
    ]
    for params, code, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_intents.create(params=params)
        assert (refused.value.http_status, refused.value.code) == (400, code)
        assert refused.value.param == param
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.charges.retrieve("ch_missing")
    assert unknown.value.http_status == 404
    with pytest.raises(stripe.AuthenticationError):
        sdk(stripe_server, "sk_live_nope").v1.customers.create()
    anonymous = httpx.post(f"{stripe_server}/v1/customers")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    assert anonymous.headers["request-id"].startswith("req_")


def test_onboarding_page_enables_transfers(client: stripe.StripeClient, stripe_server: str) -> None:
    intent = paid_intent(client)
    account = client.v1.accounts.create(
        params={
            "type": "express",
            "email": "intern@example.com",
            "country": "US",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"launcher_id": "7"},
        }
    )
    created = raw(account)
    assert not (created["details_submitted"] or created["charges_enabled"])
    assert not created["payouts_enabled"]
    assert created["capabilities"] == {"transfers": "inactive"}
    transfer: TransferCreateParams = {"amount": 1_000, "currency": "usd", "destination": account.id}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.transfers.create(params=transfer)
    assert refused.value.code == "insufficient_capabilities_for_transfer"

    link = client.v1.account_links.create(
        params={
            "account": account.id,
            "type": "account_onboarding",
            "refresh_url": "https://app.example/refresh",
            "return_url": "https://app.example/done",
        }
    )
    assert link.url.startswith(f"{stripe_server}/connect/onboarding/{account.id}?link=")
    page = httpx.get(link.url)
    assert page.status_code == 200 and "Complete onboarding" in page.text
    done = httpx.post(link.url, data={})
    assert done.status_code == 303 and done.headers["location"] == "https://app.example/done"
    assert httpx.get(link.url).status_code == 404  # a link is single-use
    assert httpx.get(f"{stripe_server}/connect/onboarding/{account.id}?link=x").status_code == 404

    onboarded = raw(client.v1.accounts.retrieve(account.id))
    assert onboarded["details_submitted"] and onboarded["payouts_enabled"]
    assert onboarded["charges_enabled"] and onboarded["capabilities"]["transfers"] == "active"
    transfer["source_transaction"] = intent["latest_charge"]
    paid = client.v1.transfers.create(params=transfer)
    assert paid.destination == account.id and paid.amount == 1_000
    updates = raw(client.v1.events.list(params={"type": "account.updated"}))["data"]
    assert updates[0]["data"]["object"]["payouts_enabled"] is True


def test_login_links_open_the_express_dashboard_once_onboarded(
    client: stripe.StripeClient, stripe_server: str
) -> None:
    """Stripe makes a login link only for an Express account whose holder finished onboarding;
    each link opens the dashboard once."""
    fresh = client.v1.accounts.create(params={"type": "express", "email": "intern@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.accounts.login_links.create(fresh.id)
    assert refused.value.http_status == 400
    assert refused.value.user_message == (
        "Cannot create a login link for an account that has not completed onboarding."
    )
    standard = client.v1.accounts.create(params={"type": "standard"})
    with pytest.raises(stripe.InvalidRequestError, match="Express Dashboard"):
        client.v1.accounts.login_links.create(standard.id)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.accounts.login_links.create("acct_nope")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")

    account = onboarded_account(client)
    before = int(time.time())
    link = client.v1.accounts.login_links.create(account)
    assert set(raw(link)) == {"object", "url", "created"} and link.object == "login_link"
    assert link.created >= before
    assert link.url.startswith(f"{stripe_server}/express/{account}?link=")
    page = httpx.get(link.url)
    assert page.status_code == 200 and "Express dashboard" in page.text
    assert account in page.text and "tax forms" in page.text
    assert "ending in 6789" in page.text  # where payouts go: Stripe's test bank account
    assert httpx.get(link.url).status_code == 404  # single-use
    assert httpx.get(f"{stripe_server}/express/{account}?link=x").status_code == 404
    assert client.v1.accounts.login_links.create(account).url != link.url


# The fields of Stripe's External Account objects as the platform controlling an Express
# account sees them: the published customer-side examples (openapi/fixtures3.json) with
# `account` instead of `customer`, and what an external account adds.
EXTERNAL_FIELDS = {
    "bank_account": """account account_holder_name account_holder_type account_type
        available_payout_methods bank_name country currency default_for_currency fingerprint
        future_requirements id last4 metadata object requirements routing_number status""",
    "card": """account address_city address_country address_line1 address_line1_check
        address_line2 address_state address_zip address_zip_check available_payout_methods
        brand country currency cvc_check dynamic_last4 exp_month exp_year fingerprint funding
        id last4 metadata name object regulated_status status tokenization_method""",
}


def onboarding_link(client: stripe.StripeClient, account: str, kind: str) -> str:
    return client.v1.account_links.create(
        params={"account": account, "type": kind, "return_url": "https://app.example/done"}
    ).url


def test_onboarding_gives_the_account_where_payouts_go(client: stripe.StripeClient) -> None:
    """The holder gives a bank account (Stripe's test one unless they type another) or a debit
    card; it is listed on the account and under its external_accounts, with its fingerprint."""
    account = client.v1.accounts.create(
        params={"type": "express", "capabilities": {"transfers": {"requested": True}}}
    ).id
    url = onboarding_link(client, account, "account_onboarding")
    page = httpx.get(url)
    assert '<label for="card_number">Or a debit card number</label>' in page.text
    assert 'name="account_number"' in page.text and 'value="000123456789"' in page.text
    assert httpx.post(url, data={}).status_code == 303
    onboarded = raw(client.v1.accounts.retrieve(account))
    (bank,) = onboarded["external_accounts"]["data"]
    assert set(bank) == set(EXTERNAL_FIELDS["bank_account"].split())
    assert (bank["object"], bank["account"], bank["last4"]) == ("bank_account", account, "6789")
    assert (bank["routing_number"], bank["currency"], bank["status"]) == ("110000000", "usd", "new")
    assert onboarded["external_accounts"]["url"] == f"/v1/accounts/{account}/external_accounts"
    listed = client.v1.accounts.external_accounts.list(account)
    assert raw(listed)["data"] == [bank] and not listed.has_more
    assert raw(client.v1.accounts.external_accounts.retrieve(account, bank["id"])) == bank
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.accounts.external_accounts.retrieve(account, "ba_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert not client.v1.accounts.external_accounts.list(account, params={"object": "card"}).data

    # Payouts go only to debit cards; a refused form keeps the link for another try.
    update = onboarding_link(client, account, "account_update")
    credit = httpx.post(update, data={"card_number": "4242 4242 4242 4242"})
    assert credit.status_code == 400 and 'role="alert"' in credit.text
    assert "debit card" in credit.text and 'value="4242 4242 4242 4242"' in credit.text
    unknown = httpx.post(update, data={"card_number": "1234"})
    assert unknown.status_code == 400 and "invalid" in unknown.text
    short = httpx.post(update, data={"routing_number": "12", "account_number": "000123456789"})
    assert short.status_code == 400 and "Routing number" in short.text
    done = httpx.post(update, data={"card_number": "4000 0566 5566 5556"})
    assert done.status_code == 303
    (card,) = raw(client.v1.accounts.external_accounts.list(account))["data"]
    assert set(card) == set(EXTERNAL_FIELDS["card"].split())
    assert (card["object"], card["brand"], card["funding"], card["last4"]) == (
        "card",
        "Visa",
        "debit",
        "5556",
    )
    # One card number, one fingerprint: the same card saved by a customer has it too.
    saved = client.v1.payment_methods.retrieve("pm_card_visa_debit").card
    assert saved and saved.fingerprint == card["fingerprint"]
    assert card["fingerprint"] != bank["fingerprint"]
    # Replacing the payout destination is told as Stripe tells it.
    created = raw(client.v1.events.list(params={"type": "account.external_account.created"}))
    assert [e["data"]["object"]["id"] for e in created["data"]] == [card["id"], bank["id"]]
    deleted = raw(client.v1.events.list(params={"type": "account.external_account.deleted"}))
    assert [e["data"]["object"]["id"] for e in deleted["data"]] == [bank["id"]]
    updated = raw(client.v1.events.list(params={"type": "account.updated"}))["data"][0]
    assert updated["data"]["object"]["external_accounts"]["data"] == [card]
    assert updated["data"]["previous_attributes"]["external_accounts"]["data"] == [bank]

    # What the service reads of it: from the account, or from Stripe past a first page.
    assert payout_fingerprints(client, updated["data"]["object"]) == [card["fingerprint"]]
    first_page: dict[str, Any] = {"object": "list", "data": [], "has_more": True}
    assert payout_fingerprints(client, {"id": account, "external_accounts": first_page}) == [
        card["fingerprint"]
    ]
    assert payout_fingerprints(client, {"id": account}) == []  # not the platform's to see


def test_transfers_are_limited_by_funds_and_listed_by_group(
    client: stripe.StripeClient,
) -> None:
    account = onboarded_account(client)
    charge = paid_intent(client, 10_000, "project-1")["latest_charge"]
    other = paid_intent(client, 5_000, "project-2")["latest_charge"]

    def pay(amount: int, source: str | None = None, group: str | None = None) -> stripe.Transfer:
        params: TransferCreateParams = {"amount": amount, "currency": "usd", "destination": account}
        if source:
            params["source_transaction"] = source
        if group:
            params["transfer_group"] = group
        return client.v1.transfers.create(params=params)

    first = pay(6_000, charge, "project-1")
    with pytest.raises(stripe.InvalidRequestError) as over:
        pay(4_001, charge)
    assert over.value.code == "balance_insufficient"
    second = pay(4_000, charge, "project-1")
    pay(1_000, other, "project-2")
    with pytest.raises(stripe.InvalidRequestError) as broke:
        pay(1_000_000)
    assert broke.value.code == "balance_insufficient"
    with pytest.raises(stripe.InvalidRequestError) as nowhere:
        client.v1.transfers.create(
            params={"amount": 100, "currency": "usd", "destination": "acct_nope"}
        )
    assert (nowhere.value.code, nowhere.value.param) == ("resource_missing", "destination")

    listed = client.v1.transfers.list(params={"transfer_group": "project-1"})
    assert [t.id for t in listed.data] == [second.id, first.id]
    assert raw(listed)["object"] == "list" and raw(listed)["url"] == "/v1/transfers"
    assert client.v1.transfers.retrieve(first.id).transfer_group == "project-1"


def test_refunds_full_partial_and_too_much(client: stripe.StripeClient) -> None:
    partial = paid_intent(client, 10_000)
    refund = client.v1.refunds.create(
        params={"payment_intent": partial["id"], "amount": 3_000, "reason": "requested_by_customer"}
    )
    assert refund.status == "succeeded" and refund.charge == partial["latest_charge"]
    charge = client.v1.charges.retrieve(partial["latest_charge"])
    assert (charge.amount_refunded, charge.refunded) == (3_000, False)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 7_001})
    assert too_much.value.param == "amount"
    rest = client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 7_000
    assert client.v1.charges.retrieve(charge.id).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": partial["id"]})
    assert again.value.code == "charge_already_refunded"

    full = paid_intent(client, 2_500)
    assert client.v1.refunds.create(params={"payment_intent": full["id"]}).amount == 2_500
    assert client.v1.refunds.retrieve(rest.id).amount == 7_000


def ids(page: stripe.ListObject[Any]) -> list[str]:
    return [item.id for item in page.data]


def test_payment_intents_are_listed_newest_first_by_customer(client: stripe.StripeClient) -> None:
    first = paid_intent(client, 1_000)
    customer = first["customer"]
    second = paid_intent(client, 2_000, customer=customer)
    third = paid_intent(client, 3_000)  # another customer's

    mine = client.v1.payment_intents.list(params={"customer": customer})
    assert ids(mine) == [second["id"], first["id"]]
    assert {k: v for k, v in raw(mine).items() if k != "data"} == {
        "object": "list",
        "has_more": False,
        "url": "/v1/payment_intents",
    }
    assert raw(mine)["data"][0] == raw(client.v1.payment_intents.retrieve(second["id"]))
    assert ids(client.v1.payment_intents.list(params={"customer": "cus_nobody"})) == []

    page = client.v1.payment_intents.list(params={"limit": 2})
    assert ids(page) == [third["id"], second["id"]] and page.has_more
    rest = client.v1.payment_intents.list(params={"limit": 2, "starting_after": second["id"]})
    assert ids(rest) == [first["id"]] and not rest.has_more
    back = client.v1.payment_intents.list(params={"limit": 1, "ending_before": first["id"]})
    assert ids(back) == [second["id"]] and back.has_more
    every = client.v1.payment_intents.list(params={"limit": 1}).auto_paging_iter()
    assert [intent.id for intent in every] == [third["id"], second["id"], first["id"]]

    with pytest.raises(stripe.InvalidRequestError) as too_many:
        client.v1.payment_intents.list(params={"limit": 101})
    assert (too_many.value.http_status, too_many.value.param) == (400, "limit")
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.payment_intents.list(params={"starting_after": "pi_missing"})
    assert (gone.value.http_status, gone.value.code) == (404, "resource_missing")
    assert gone.value.param == "starting_after"


def test_charges_are_listed_by_payment_intent_and_customer(client: stripe.StripeClient) -> None:
    first = paid_intent(client, 1_000)
    customer = first["customer"]
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(
            params={
                "amount": 1_500,
                "currency": "usd",
                "customer": customer,
                "payment_method": "pm_card_chargeDeclined",
                "allowed_payment_method_types": ["card"],
                "confirm": True,
            }
        )
    failed = declined.value.error.charge if declined.value.error else None
    second = paid_intent(client, 2_000, customer=customer)
    other = paid_intent(client, 3_000)
    charges = [first["latest_charge"], failed, second["latest_charge"], other["latest_charge"]]

    # Like Stripe, failed charges are listed too.
    assert ids(client.v1.charges.list()) == charges[::-1]
    mine = client.v1.charges.list(params={"customer": customer})
    assert ids(mine) == [second["latest_charge"], failed, first["latest_charge"]]
    assert raw(mine)["url"] == "/v1/charges" and raw(mine)["object"] == "list"
    by_intent = client.v1.charges.list(params={"payment_intent": second["id"]})
    assert ids(by_intent) == [second["latest_charge"]]
    assert raw(by_intent)["data"][0] == raw(client.v1.charges.retrieve(second["latest_charge"]))
    assert ids(client.v1.charges.list(params={"payment_intent": "pi_nothing"})) == []

    page = client.v1.charges.list(params={"customer": customer, "limit": 2})
    assert ids(page) == [second["latest_charge"], failed] and page.has_more
    last = client.v1.charges.list(
        params={"customer": customer, "limit": 2, "starting_after": str(failed)}
    )
    assert ids(last) == [first["latest_charge"]] and not last.has_more
    expanded = client.v1.charges.list(
        params={"payment_intent": first["id"], "expand": ["data.payment_intent"]}
    )
    assert raw(expanded)["data"][0]["payment_intent"]["id"] == first["id"]


def test_refunds_are_listed_by_payment_intent_and_charge(client: stripe.StripeClient) -> None:
    intent = paid_intent(client, 10_000)
    charge = intent["latest_charge"]
    first = client.v1.refunds.create(params={"payment_intent": intent["id"], "amount": 1_000})
    second = client.v1.refunds.create(params={"charge": charge, "amount": 2_000})
    other = paid_intent(client, 5_000)
    elsewhere = client.v1.refunds.create(params={"payment_intent": other["id"]})

    assert ids(client.v1.refunds.list()) == [elsewhere.id, second.id, first.id]
    by_intent = client.v1.refunds.list(params={"payment_intent": intent["id"]})
    assert ids(by_intent) == [second.id, first.id] and not by_intent.has_more
    assert raw(by_intent)["url"] == "/v1/refunds" and raw(by_intent)["object"] == "list"
    assert raw(by_intent)["data"][1] == raw(client.v1.refunds.retrieve(first.id))
    assert ids(client.v1.refunds.list(params={"charge": charge})) == [second.id, first.id]
    assert ids(client.v1.refunds.list(params={"charge": other["latest_charge"]})) == [elsewhere.id]

    page = client.v1.refunds.list(params={"limit": 2})
    assert ids(page) == [elsewhere.id, second.id] and page.has_more
    rest = client.v1.refunds.list(params={"limit": 2, "starting_after": second.id})
    assert ids(rest) == [first.id] and not rest.has_more
    newer = client.v1.refunds.list(params={"charge": charge, "ending_before": first.id})
    assert ids(newer) == [second.id] and not newer.has_more
    expanded = client.v1.refunds.list(params={"charge": charge, "expand": ["data.charge"]})
    assert raw(expanded)["data"][0]["charge"]["amount_refunded"] == 3_000


def test_idempotent_replay_creates_nothing_new(
    client: stripe.StripeClient, stripe_server: str
) -> None:
    key = str(uuid.uuid4())
    params: CustomerCreateParams = {"email": "once@example.com", "metadata": {"n": "1"}}
    first = client.v1.customers.create(params=params, options={"idempotency_key": key})
    again = client.v1.customers.create(params=params, options={"idempotency_key": key})
    assert again.id == first.id
    assert first.last_response is not None and again.last_response is not None
    assert again.last_response.body == first.last_response.body
    assert again.last_response.headers["idempotent-replayed"] == "true"

    with pytest.raises(stripe.IdempotencyError) as reused:
        client.v1.customers.create(
            params={"email": "twice@example.com"}, options={"idempotency_key": key}
        )
    assert "same parameters" in str(reused.value.user_message)
    # Keys belong to one API key: another key's identical request is a new request.
    stranger = sdk(stripe_server, "sk_test_other")
    elsewhere = stranger.v1.customers.create(params=params, options={"idempotency_key": key})
    assert elsewhere.id != first.id
    # A request refused for malformed parameters is not saved, so its key can be used again.
    retry = str(uuid.uuid4())
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"email": "nope"}, options={"idempotency_key": retry})
    client.v1.customers.create(params=params, options={"idempotency_key": retry})

    log = httpx.get(f"{stripe_server}/_test/requests?path_prefix=/v1/customers").json()["data"]
    made = [e for e in log if e["status"] == 200 and not e["replayed"]]
    assert len(made) == 3 and sum(e["replayed"] for e in log) == 1

    # Racing retries of one request still make one object.
    racing = str(uuid.uuid4())
    ids: list[str] = []

    def create() -> None:
        ids.append(client.v1.customers.create(options={"idempotency_key": racing}).id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []
    refuse_first = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Receiver.refuse_first:  # the first delivery fails, so only a retry gets through
            _Receiver.refuse_first = False
            self.send_response(503)
        else:
            _Receiver.received.append((self.headers["Stripe-Signature"], body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhooks_are_signed_and_retried() -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        with serve(create_app(webhook_url=hook, webhook_secret=WEBHOOK_SECRET)) as url:
            intent = paid_intent(sdk(url))
            deadline = time.monotonic() + 10
            while not _Receiver.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _Receiver.received, "no webhook arrived"
            signature, payload = _Receiver.received[0]
            event = stripe.Webhook.construct_event(payload, signature, WEBHOOK_SECRET)
            assert event.type == "payment_intent.succeeded"
            assert json.loads(payload)["data"]["object"]["id"] == intent["id"]
            with pytest.raises(stripe.SignatureVerificationError):
                stripe.Webhook.construct_event(payload, signature, "whsec_wrong")
            assert sdk(url).v1.events.retrieve(event.id).pending_webhooks == 0
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_injected_failures_raise_api_error_then_clear(
    client: stripe.StripeClient, stripe_server: str
) -> None:
    rule = {"path_prefix": "/v1/customers", "status": 500, "count": 2}
    httpx.post(f"{stripe_server}/_test/failures", json=rule).raise_for_status()
    key = str(uuid.uuid4())
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            client.v1.customers.create(options={"idempotency_key": key})
    created = client.v1.customers.create(options={"idempotency_key": key})
    assert created.id.startswith("cus_")
    log = httpx.get(f"{stripe_server}/_test/requests").json()["data"]
    assert [e["status"] for e in log if e["idempotency_key"] == key] == [500, 500, 200]

    httpx.post(f"{stripe_server}/_test/failures", json={**rule, "count": 5})
    httpx.delete(f"{stripe_server}/_test/failures").raise_for_status()
    assert client.v1.customers.create().id.startswith("cus_")


def test_state_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "stripe.json"
    key = str(uuid.uuid4())
    with serve(create_app(data_path=str(data))) as url:
        customer = sdk(url).v1.customers.create(
            params={"name": "Kept"}, options={"idempotency_key": key}
        )
    assert data.exists()
    with serve(create_app(data_path=str(data))) as url:
        client = sdk(url)
        assert client.v1.customers.retrieve(customer.id).name == "Kept"
        replay = client.v1.customers.create(
            params={"name": "Kept"}, options={"idempotency_key": key}
        )
        assert replay.id == customer.id


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number"
    )


def test_objects_have_stripes_published_shape(
    client: stripe.StripeClient, stripe_server: str
) -> None:
    fixtures = json.loads(FIXTURES.read_text())["resources"]
    account = onboarded_account(client)
    intent = paid_intent(client)
    charge = client.v1.charges.retrieve(intent["latest_charge"])
    assert isinstance(charge.balance_transaction, str)
    ours = {
        "account": raw(client.v1.accounts.retrieve(account)),
        "account_link": raw(
            client.v1.account_links.create(params={"account": account, "type": "account_update"})
        ),
        "customer": raw(client.v1.customers.retrieve(intent["customer"])),
        "payment_method": raw(client.v1.payment_methods.retrieve(intent["payment_method"])),
        "payment_intent": intent,
        "charge": raw(charge),
        "balance_transaction": raw(
            client.v1.balance_transactions.retrieve(charge.balance_transaction)
        ),
        "refund": raw(client.v1.refunds.create(params={"charge": charge.id, "amount": 100})),
        "transfer": raw(
            client.v1.transfers.create(
                params={"amount": 100, "currency": "usd", "destination": account}
            )
        ),
        "event": raw(client.v1.events.retrieve(client.v1.events.list().data[0].id)),
        "balance": raw(client.v1.balance.retrieve()),
    }
    for kind, obj in ours.items():
        expected = fixtures[kind]
        assert set(obj) == set(expected), f"{kind}: fields differ"
        for name, value in obj.items():
            if value is not None and expected[name] is not None:
                assert _json_type(value) == _json_type(expected[name]), f"{kind}.{name}"


# The top-level fields of Stripe's published examples of the two Checkout resources
# (openapi/fixtures3.json), which tests/fixtures/stripe_objects.json does not hold yet.
PUBLISHED_FIELDS = {
    "checkout.session": """adaptive_pricing after_expiration allow_promotion_codes amount_subtotal
        amount_total automatic_tax billing_address_collection cancel_url client_reference_id
        client_secret collected_information consent consent_collection created currency
        currency_conversion custom_fields custom_text customer customer_account customer_creation
        customer_details customer_email discounts expires_at id integration_identifier invoice
        invoice_creation livemode locale managed_payments metadata mode object origin_context
        payment_intent payment_link payment_method_collection payment_method_configuration_details
        payment_method_options payment_method_types payment_status permissions
        phone_number_collection recovered_from saved_payment_method_options setup_intent
        shipping_address_collection shipping_cost shipping_options status submit_type subscription
        success_url total_details ui_mode url wallet_options""",
    "setup_intent": """application automatic_payment_methods cancellation_reason client_secret
        created customer description excluded_payment_method_types flow_directions id
        last_setup_error latest_attempt livemode mandate metadata next_action object on_behalf_of
        payment_method payment_method_configuration_details payment_method_options
        payment_method_types single_use_mandate status usage""",
}


def setup_session(
    client: stripe.StripeClient, customer: str, key: str | None = None
) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer,
            "allowed_payment_method_types": ["card"],
            "success_url": "https://app.example/card?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example/card",
            "metadata": {"employer_id": "e1"},
        },
        options={"idempotency_key": key} if key else {},
    )


def test_checkout_in_setup_mode_saves_a_card(
    client: stripe.StripeClient, stripe_server: str
) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    key = str(uuid.uuid4())
    session = setup_session(client, customer.id, key)
    assert setup_session(client, customer.id, key).id == session.id  # an idempotent replay
    created = raw(session)
    assert set(created) == set(PUBLISHED_FIELDS["checkout.session"].split())
    assert created["id"].startswith("cs_test_") and created["object"] == "checkout.session"
    assert (created["mode"], created["status"], created["customer"]) == (
        "setup",
        "open",
        customer.id,
    )
    assert created["setup_intent"] is None and created["metadata"] == {"employer_id": "e1"}
    assert created["payment_status"] == "no_payment_required"
    assert created["url"] == f"{stripe_server}/c/pay/{session.id}"

    page = httpx.get(created["url"])
    assert page.status_code == 200 and "<html lang='en'>" in page.text
    assert '<label for="cardNumber">Card number</label>' in page.text
    assert 'name="cardNumber"' in page.text and 'value="4242 4242 4242 4242"' in page.text
    assert '<button type="submit">Save card</button>' in page.text
    assert '<a href="https://app.example/card">' in page.text and "ada@example.com" in page.text

    wrong = httpx.post(created["url"], data={"cardNumber": "1234 <b>"})
    assert wrong.status_code == 400 and 'role="alert"' in wrong.text
    assert 'aria-invalid="true"' in wrong.text and 'value="1234 &lt;b&gt;"' in wrong.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"

    saved = httpx.post(created["url"], data={"cardNumber": "4242 4242 4242 4242"})
    assert saved.status_code == 303
    assert saved.headers["location"] == f"https://app.example/card?session={session.id}"
    done = raw(
        client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["setup_intent"]})
    )
    assert (done["status"], done["url"]) == ("complete", None)
    assert done["customer_details"]["email"] == "ada@example.com"
    intent = done["setup_intent"]
    assert set(intent) == set(PUBLISHED_FIELDS["setup_intent"].split())
    assert intent["id"].startswith("seti_") and intent["object"] == "setup_intent"
    assert (intent["status"], intent["usage"]) == ("succeeded", "off_session")
    assert intent["customer"] == customer.id
    assert raw(client.v1.setup_intents.retrieve(intent["id"])) == intent
    card = raw(client.v1.payment_methods.retrieve(intent["payment_method"]))
    assert (card["customer"], card["card"]["last4"]) == (customer.id, "4242")

    # Submitted twice (a double click): the same card, nothing new; the page is gone after.
    again = httpx.post(created["url"], data={"cardNumber": "4242 4242 4242 4242"})
    assert again.status_code == 303 and again.headers["location"] == saved.headers["location"]
    assert client.v1.checkout.sessions.retrieve(session.id).setup_intent == intent["id"]
    assert httpx.get(created["url"]).status_code == 404
    completed = raw(client.v1.events.list(params={"type": "checkout.session.completed"}))["data"]
    assert [e["data"]["object"]["id"] for e in completed] == [session.id]
    assert completed[0]["data"]["object"]["setup_intent"] == intent["id"]
    assert client.v1.events.list(params={"type": "setup_intent.succeeded"}).data


def test_checkout_saves_a_card_that_declines_when_charged(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    session = setup_session(client, customer.id)
    assert session.url
    saved = httpx.post(session.url, data={"cardNumber": "4000-0000-0000-0002"})
    assert saved.status_code == 303
    intent = client.v1.checkout.sessions.retrieve(session.id).setup_intent
    assert isinstance(intent, str)
    card = client.v1.setup_intents.retrieve(intent).payment_method
    assert isinstance(card, str)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(
            params={
                "amount": 5_000,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": card,
                "allowed_payment_method_types": ["card"],
                "confirm": True,
                "off_session": True,
            }
        )
    assert declined.value.code == "card_declined"


def test_checkout_sessions_are_refused_like_stripe(
    client: stripe.StripeClient, stripe_server: str
) -> None:
    customer = client.v1.customers.create().id
    good: Any = {
        "mode": "setup",
        "customer": customer,
        "success_url": "https://app.example/done",
        "allowed_payment_method_types": ["card"],
    }
    cases: list[tuple[Any, int, str | None, str]] = [
        ({**good, "mode": "payment"}, 400, None, "mode"),
        ({k: v for k, v in good.items() if k != "mode"}, 400, "parameter_missing", "mode"),
        (
            {k: v for k, v in good.items() if k != "success_url"},
            400,
            "parameter_missing",
            "success_url",
        ),
        ({**good, "cancel_url": "nowhere"}, 400, "url_invalid", "cancel_url"),
        ({**good, "customer": "cus_nobody"}, 404, "resource_missing", "customer"),
        # Without listed types, Checkout offers the Dashboard's methods, priced in a currency.
        (
            {k: v for k, v in good.items() if k != "allowed_payment_method_types"},
            400,
            "parameter_missing",
            "currency",
        ),
        (
            {**good, "allowed_payment_method_types": ["sepa_debit"]},
            400,
            None,
            "allowed_payment_method_types",
        ),
    ]
    for params, status, code, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.checkout.sessions.create(params=params)
        assert (refused.value.http_status, refused.value.code) == (status, code)
        assert refused.value.param == param
    unlisted = {k: v for k, v in good.items() if k != "allowed_payment_method_types"}
    dynamic = client.v1.checkout.sessions.create(params={**unlisted, "currency": "eur"})
    assert raw(dynamic)["payment_method_configuration_details"]["id"].startswith("pmc_")
    # Older API versions still take payment_method_types[] (the SDK's own refuses them).
    legacy = httpx.post(
        f"{stripe_server}/v1/checkout/sessions",
        data={
            "mode": "setup",
            "customer": customer,
            "success_url": "https://app.example/done",
            "payment_method_types[]": "card",
        },
        headers={"Authorization": f"Bearer {API_KEY}", "Stripe-Version": "2024-06-20"},
    )
    assert legacy.status_code == 200 and legacy.json()["payment_method_types"] == ["card"]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert httpx.get(f"{stripe_server}/c/pay/cs_test_missing").status_code == 404


def test_an_expired_checkout_page_saves_nothing() -> None:
    app = create_app()
    with serve(app) as url:
        client = sdk(url)
        session = setup_session(client, client.v1.customers.create().id)
        assert session.url
        # Time travel: the session's 24 hours are up.
        app.state.stripe.store.objects("checkout.session")[session.id]["expires_at"] = 0
        page = httpx.post(session.url, data={"cardNumber": "4242424242424242"})
        assert page.status_code == 404 and "expired" in page.text
        assert '<a href="https://app.example/card">' in page.text
        expired = client.v1.checkout.sessions.retrieve(session.id)
        assert (expired.status, expired.url, expired.setup_intent) == ("expired", None, None)
        assert client.v1.events.list(params={"type": "checkout.session.expired"}).data
