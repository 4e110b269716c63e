"""Stripe wire-format helpers and object builders for the local Stripe server.

Every builder returns a plain dict with exactly the top-level fields of Stripe's published example
for that resource (openapi fixtures3.json), so the official SDK sees what it would see from Stripe.
Nothing here touches I/O or server state.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    return int(time.time())


# --- errors ----------------------------------------------------------------------------------


class StripeError(Exception):
    """An error answered in Stripe's `{"error": {...}}` shape.

    `stored` says whether the idempotency layer saves it: Stripe saves a result only once the
    endpoint began executing, so malformed-parameter errors are not saved and may be retried
    with the same key.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        stored: bool = True,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.stored = stored
        self.error: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
        if param:
            self.error["param"] = param
        self.error.update({k: v for k, v in extra.items() if v is not None})

    def body(self) -> dict[str, Any]:
        return {"error": dict(sorted(self.error.items()))}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """A malformed request: rejected before execution, so never saved under an idempotency key."""
    return StripeError(400, message, param=param, code=code, stored=False)


def missing(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def no_such(label: str, object_id: str, param: str) -> StripeError:
    return StripeError(404, f"No such {label}: '{object_id}'", code="resource_missing", param=param)


# --- form decoding ---------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SUBKEY = re.compile(r"\[([^\[\]]*)\]")


def decode_form(body: str) -> dict[str, Any]:
    """Decode Stripe's bracketed form encoding (`a[b][c]=1`, `expand[]=x`, `items[0][id]=y`)."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(raw_key)
        if not match:
            raise invalid(f"Invalid parameter name: {raw_key}")
        parts = [match.group(1), *_SUBKEY.findall(match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            # `[]` appends: give it the next index so it is listified below like `[0]`.
            key = str(len(node)) if part == "" else part
            if last:
                if isinstance(node.get(key), dict):
                    raise invalid(f"Invalid value for {raw_key}: expected an object", raw_key)
                node[key] = value
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    # `metadata=` (clear all) followed by `metadata[k]=v`: the object wins.
                    if child != "":
                        raise invalid(f"Invalid object: {parts[0]}", parts[0])
                    child = node[key] = {}
                node = child
    return {k: _listify(v, k) for k, v in root.items()}


def _listify(value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        return value
    if name != "metadata" and value and all(k.isdigit() for k in value):
        return [_listify(value[k], k) for k in sorted(value, key=int)]
    return {k: (v if name == "metadata" else _listify(v, k)) for k, v in value.items()}


class Params:
    """Typed access to one request's decoded parameters, with Stripe's validation errors."""

    def __init__(self, raw: dict[str, Any], allowed: frozenset[str]) -> None:
        for key in raw:
            if key not in allowed and key != "expand":
                raise invalid(f"Received unknown parameter: {key}", key, "parameter_unknown")
        self.raw = raw

    def has(self, name: str) -> bool:
        return name in self.raw

    def string(
        self, name: str, *, required: bool = False, choices: tuple[str, ...] = ()
    ) -> str | None:
        value = self.raw.get(name)
        if isinstance(value, dict | list):
            raise invalid(f"Invalid string: {value}", name)
        if value == "" and required:
            raise invalid(
                f"You passed an empty string for '{name}'. We assume empty values are an "
                f"attempt to unset a parameter; however '{name}' cannot be unset. You should "
                f"remove '{name}' from your request or supply a non-empty value.",
                name,
                "parameter_invalid_empty",
            )
        if value in (None, ""):
            if required:
                raise missing(name)
            return None
        if choices and value not in choices:
            raise invalid(f"Invalid {name}: must be one of {', '.join(choices)}", name)
        return str(value)

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        text = self.string(name, required=required)
        if text is None:
            return None
        if not re.fullmatch(r"-?\d+", text):
            raise invalid(f"Invalid integer: {text}", name, "parameter_invalid_integer")
        number = int(text)
        if minimum is not None and number < minimum:
            raise invalid(
                f"This value must be greater than or equal to {minimum}.",
                name,
                "parameter_invalid_integer",
            )
        return number

    def boolean(self, name: str) -> bool | None:
        text = self.string(name)
        if text is None:
            return None
        if text not in ("true", "false"):
            raise invalid(f"Invalid boolean: {text}", name)
        return text == "true"

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {name}", name)
        return value

    def metadata(self) -> dict[str, str] | None:
        """The metadata patch: a `""` value deletes that key; `metadata=` clears all keys."""
        value = self.raw.get("metadata")
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid("Invalid object: metadata", "metadata")
        if len(value) > 50:
            raise invalid("You can have at most 50 metadata keys.", "metadata")
        for key, item in value.items():
            if not isinstance(item, str):
                raise invalid(f"Invalid string: {item}", f"metadata[{key}]")
            if len(key) > 40:
                raise invalid(
                    "Metadata keys can have up to 40 characters, but you passed in a key "
                    f"that is {len(key)} characters. Invalid key: {key}",
                    f"metadata[{key}]",
                )
            if len(item) > 500:
                raise invalid(
                    "Metadata values can have up to 500 characters, but you passed in a value "
                    f"that is {len(item)} characters. Invalid value: {item}",
                    f"metadata[{key}]",
                )
        return value

    def expand(self) -> list[str]:
        value = self.raw.get("expand", [])
        if isinstance(value, str):
            value = [value] if value else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid("Invalid array", "expand")
        return value

    def currency(self) -> str:
        code = str(self.string("currency", required=True)).lower()
        if code not in CURRENCIES:
            raise invalid(
                f"Invalid currency: {code}. Stripe currently supports these currencies: "
                + ", ".join(sorted(CURRENCIES)),
                "currency",
            )
        return code

    def email(self) -> str | None:
        value = self.string("email")
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise invalid(f"Invalid email address: {value}", "email", "email_invalid")
        return value


def apply_metadata(current: dict[str, str], patch: dict[str, str] | None) -> dict[str, str]:
    if patch is None:
        return current
    if not patch:
        return {}
    merged = {**current, **patch}
    return {k: v for k, v in merged.items() if v != ""}


# --- money -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Currency:
    symbol: str
    minimum: int  # Stripe's minimum charge amount, in the currency's smallest unit
    zero_decimal: bool = False


CURRENCIES = {
    "usd": Currency("$", 50),
    "aud": Currency("$", 50),
    "brl": Currency("R$", 50),
    "cad": Currency("$", 50),
    "chf": Currency("CHF ", 50),
    "dkk": Currency("kr.", 250),
    "eur": Currency("€", 50),
    "gbp": Currency("£", 30),
    "hkd": Currency("$", 400),
    "inr": Currency("₹", 50),
    "jpy": Currency("¥", 50, zero_decimal=True),
    "mxn": Currency("$", 1000),
    "nok": Currency("kr ", 300),
    "nzd": Currency("$", 50),
    "sek": Currency("kr ", 300),
    "sgd": Currency("$", 50),
}

COUNTRY_CURRENCY = {
    "US": "usd", "AU": "aud", "BR": "brl", "CA": "cad", "CH": "chf", "DK": "dkk", "GB": "gbp",
    "HK": "hkd", "IN": "inr", "JP": "jpy", "MX": "mxn", "NO": "nok", "NZ": "nzd", "SE": "sek",
    "SG": "sgd", "AT": "eur", "BE": "eur", "DE": "eur", "ES": "eur", "FI": "eur", "FR": "eur",
    "IE": "eur", "IT": "eur", "LU": "eur", "NL": "eur", "PT": "eur",
}  # fmt: skip


def money(amount: int, currency: str) -> str:
    info = CURRENCIES[currency]
    if info.zero_decimal:
        return f"{info.symbol}{amount:,}"
    return f"{info.symbol}{amount / 100:,.2f}"


def processing_fee(amount: int) -> int:
    """Stripe's standard card pricing, 2.9% + 30 (in the smallest unit)."""
    return round(amount * 0.029) + 30


# --- test cards ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    funding: str = "credit"
    decline_code: str | None = None  # None: charges succeed
    error_code: str = "card_declined"
    message: str = "Your card was declined."

    @property
    def fingerprint(self) -> str:
        # Stripe's fingerprint is stable per card number; derive one the same way.
        return hashlib.sha256(f"{self.brand}{self.last4}".encode()).hexdigest()[:16]


TEST_CARDS = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_visa_debit": TestCard("visa", "5556", funding="debit"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_mastercard_debit": TestCard("mastercard", "8210", funding="debit"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_chargeDeclined": TestCard("visa", "0002", decline_code="generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "visa", "9995", decline_code="insufficient_funds",
        message="Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": TestCard(
        "visa", "0069", decline_code="expired_card", error_code="expired_card",
        message="Your card has expired.",
    ),
    # Saved without complaint, declined when charged (Stripe's 4000000000000341).
    "pm_card_chargeCustomerFail": TestCard("visa", "0341", decline_code="generic_decline"),
}  # fmt: skip

# The test card numbers a hosted page accepts, as the magic payment method each one stands for.
CARD_NUMBERS = {
    "4242424242424242": "pm_card_visa",
    "4000056655665556": "pm_card_visa_debit",
    "5555555555554444": "pm_card_mastercard",
    "5200828282828210": "pm_card_mastercard_debit",
    "371449635398431": "pm_card_amex",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
    "4000000000000069": "pm_card_chargeDeclinedExpiredCard",
    "4000000000000341": "pm_card_chargeCustomerFail",
}


def card_for_number(number: str) -> str | None:
    """The magic payment method id of a test card number as typed (spaces and dashes allowed)."""
    return CARD_NUMBERS.get(digits(number))


def digits(typed: str) -> str:
    """A number as people type it, without the spaces and dashes."""
    return re.sub(r"[\s-]", "", typed)


# --- payout destinations (external accounts of connected accounts) ---------------------------

# Stripe's US test bank account: routing 110000000 with account 000123456789 pays out.
TEST_ROUTING_NUMBER = "110000000"
TEST_ACCOUNT_NUMBER = "000123456789"
# How a card's brand is written on Card objects (external accounts), unlike on PaymentMethods.
CARD_BRANDS = {"visa": "Visa", "mastercard": "MasterCard", "amex": "American Express"}


def bank_fingerprint(country: str, routing_number: str, account_number: str) -> str:
    """Stable per bank account, as Stripe's is (derived the way TestCard.fingerprint is)."""
    return hashlib.sha256(f"{country}{routing_number}{account_number}".encode()).hexdigest()[:16]


# --- builders --------------------------------------------------------------------------------


def nulls(names: str) -> dict[str, None]:
    """Fields this server never sets, which Stripe sends as null."""
    return dict.fromkeys(names.split())


def list_object(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def postal_address(given: dict[str, Any] | None = None) -> dict[str, Any]:
    fields = nulls("city country line1 line2 postal_code state")
    return {f: (given or {}).get(f) or None for f in fields}


def _billing_details() -> dict[str, Any]:
    return {"address": postal_address(), **nulls("email name phone tax_id")}


def customer(
    *,
    name: str | None,
    email: str | None,
    description: str | None,
    phone: str | None,
    address: dict[str, Any] | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    return {
        **nulls("currency default_source discount shipping test_clock"),
        "address": postal_address(address) if address else None,
        "balance": 0,
        "created": now(),
        "delinquent": False,
        "description": description,
        "email": email,
        "id": new_id("cus", 14),
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": nulls("custom_fields default_payment_method footer rendering_options"),
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "object": "customer",
        "phone": phone,
        "preferred_locales": [],
        "tax_exempt": "none",
    }


def payment_method(card: TestCard, customer_id: str | None) -> dict[str, Any]:
    created = now()
    return {
        "allow_redisplay": "unspecified",
        "billing_details": _billing_details(),
        "card": _card_details(card, created),
        "created": created,
        "customer": customer_id,
        "customer_account": None,
        "id": new_id("pm"),
        "livemode": False,
        "metadata": {},
        "object": "payment_method",
        "type": "card",
    }


def _card_details(card: TestCard, created: int) -> dict[str, Any]:
    return {
        "brand": card.brand,
        "checks": {
            **nulls("address_line1_check address_postal_code_check"),
            "cvc_check": "unchecked",
        },
        "country": "US",
        "display_brand": card.brand,
        "exp_month": 12,
        "exp_year": time.gmtime(created).tm_year + 3,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def payment_intent(
    *,
    amount: int,
    currency: str,
    customer_id: str | None,
    payment_method_id: str | None,
    automatic: dict[str, Any] | None,
    **fields: Any,
) -> dict[str, Any]:
    """`fields`: description metadata transfer_group capture_method receipt_email
    statement_descriptor statement_descriptor_suffix setup_future_usage, as given."""
    pi_id = new_id("pi")
    return {
        **nulls(
            "application application_fee_amount canceled_at cancellation_reason "
            "customer_account excluded_payment_method_types last_payment_error latest_charge "
            "managed_payments next_action on_behalf_of processing review shipping source "
            "transfer_data"
        ),
        **fields,
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "automatic_payment_methods": automatic,
        "client_secret": f"{pi_id}_secret_{new_id('x', 25)[2:]}",
        "confirmation_method": "automatic",
        "created": now(),
        "currency": currency,
        "customer": customer_id,
        "id": pi_id,
        "livemode": False,
        "object": "payment_intent",
        "payment_method": payment_method_id,
        "payment_method_configuration_details": _default_configuration() if automatic else None,
        "payment_method_options": _card_options("installments mandate_options network"),
        "payment_method_types": ["card"],
        "status": "requires_confirmation" if payment_method_id else "requires_payment_method",
    }


def _default_configuration() -> dict[str, Any]:
    """How Stripe names the account's default payment method configuration when it chose
    the methods (dynamic payment methods)."""
    return {"id": "pmc_" + hashlib.sha256(b"default").hexdigest()[:24], "parent": None}


def _card_options(unset: str = "") -> dict[str, Any]:
    return {"card": {**nulls(unset), "request_three_d_secure": "automatic"}}


def checkout_session(
    *,
    base_url: str,
    mode: str,
    customer_id: str | None,
    currency: str | None,
    dynamic: bool,
    success_url: str,
    cancel_url: str | None,
    metadata: dict[str, str],
    client_reference_id: str | None,
    lifetime: int,
) -> dict[str, Any]:
    """An open hosted Checkout Session; `url` is the server's hosted stand-in page."""
    cs_id = new_id("cs_test", 58)
    created = now()
    return {
        **nulls(
            "adaptive_pricing after_expiration allow_promotion_codes amount_subtotal "
            "amount_total billing_address_collection client_secret collected_information "
            "consent consent_collection currency_conversion customer_account customer_creation "
            "customer_details customer_email discounts integration_identifier invoice "
            "invoice_creation locale origin_context payment_intent payment_link permissions "
            "recovered_from saved_payment_method_options setup_intent "
            "shipping_address_collection shipping_cost submit_type subscription total_details "
            "wallet_options"
        ),
        "automatic_tax": {"enabled": False, **nulls("liability provider status")},
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "created": created,
        "currency": currency,
        "custom_fields": [],
        "custom_text": nulls("after_submit shipping_address submit terms_of_service_acceptance"),
        "customer": customer_id,
        "expires_at": created + lifetime,
        "id": cs_id,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "mode": mode,
        "object": "checkout.session",
        "payment_method_collection": "always",
        "payment_method_configuration_details": _default_configuration() if dynamic else None,
        "payment_method_options": _card_options(),
        "payment_method_types": ["card"],
        "payment_status": "no_payment_required",
        "phone_number_collection": {"enabled": False},
        "shipping_options": [],
        "status": "open",
        "success_url": success_url,
        "ui_mode": "hosted_page",
        "url": f"{base_url}/c/pay/{cs_id}",
    }


def customer_details(cus: dict[str, Any] | None) -> dict[str, Any]:
    """What a completed Checkout Session records of who completed it."""
    return {
        "address": postal_address(cus["address"] if cus else None),
        "business_name": None,
        "email": cus["email"] if cus else None,
        "individual_name": None,
        "name": cus["name"] if cus else None,
        "phone": cus["phone"] if cus else None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def setup_intent(
    *,
    customer_id: str | None,
    payment_method_id: str,
    dynamic: bool,
    description: str | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    """A SetupIntent that saved a card for later off-session payments."""
    seti_id = new_id("seti")
    return {
        **nulls(
            "application cancellation_reason excluded_payment_method_types flow_directions "
            "last_setup_error latest_attempt mandate next_action on_behalf_of single_use_mandate"
        ),
        "automatic_payment_methods": (
            {"allow_redirects": "always", "enabled": True} if dynamic else None
        ),
        "client_secret": f"{seti_id}_secret_{new_id('x', 32)[2:]}",
        "created": now(),
        "customer": customer_id,
        "description": description,
        "id": seti_id,
        "livemode": False,
        "metadata": metadata,
        "object": "setup_intent",
        "payment_method": payment_method_id,
        "payment_method_configuration_details": _default_configuration() if dynamic else None,
        "payment_method_options": _card_options("mandate_options network"),
        "payment_method_types": ["card"],
        "status": "succeeded",
        "usage": "off_session",
    }


def _outcome(card: TestCard) -> dict[str, Any]:
    if card.decline_code is None:
        return {
            **nulls("advice_code network_advice_code network_decline_code reason"),
            "network_status": "approved_by_network",
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": "try_again_later",
        "network_advice_code": None,
        "network_decline_code": "05",
        "network_status": "declined_by_network",
        "reason": card.decline_code,
        "risk_level": "normal",
        "risk_score": 40,
        "seller_message": "The bank did not return any further details with this decline.",
        "type": "issuer_declined",
    }


def charge(
    *, intent: dict[str, Any], card: TestCard, payment_method_id: str, receipt_base: str
) -> dict[str, Any]:
    """The charge a confirmation creates: succeeded, or failed when the card declines."""
    ch_id = new_id("ch")
    created = now()
    ok = card.decline_code is None
    amount = intent["amount"]
    details = _card_details(card, created)
    for key in ("display_brand", "generated_from", "networks", "three_d_secure_usage"):
        del details[key]
    details.update(
        nulls("installments mandate three_d_secure transaction_link_id"),
        amount_authorized=amount if ok else None,
        authorization_code=f"{secrets.randbelow(10**6):06d}" if ok else None,
        extended_authorization={"status": "disabled"},
        incremental_authorization={"status": "unavailable"},
        multicapture={"status": "unavailable"},
        network=card.brand,
        network_token={"used": False},
        network_transaction_id=f"{secrets.randbelow(10**15):015d}",
        overcapture={"maximum_amount_capturable": amount, "status": "unavailable"},
    )
    return {
        **nulls(
            "application application_fee application_fee_amount balance_transaction "
            "failure_balance_transaction on_behalf_of receipt_number review shipping source "
            "source_transfer transfer_data"
        ),
        "amount": amount,
        "amount_captured": amount if ok else 0,
        "amount_refunded": 0,
        "billing_details": _billing_details(),
        "calculated_statement_descriptor": "LOCALSTRIPE",
        "captured": ok,
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_code": None if ok else card.error_code,
        "failure_message": None if ok else card.message,
        "fraud_details": {},
        "id": ch_id,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "object": "charge",
        "outcome": _outcome(card),
        "paid": ok,
        "payment_intent": intent["id"],
        "payment_method": payment_method_id,
        "payment_method_details": {"card": details, "type": "card"},
        "receipt_email": intent["receipt_email"],
        "receipt_url": f"{receipt_base}/receipts/payment/{ch_id}",
        "refunded": False,
        "refunds": list_object([], f"/v1/charges/{ch_id}/refunds"),
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "succeeded" if ok else "failed",
        "transfer_group": intent["transfer_group"],
    }


def balance_transaction(
    *, amount: int, currency: str, source: str, kind: str, description: str | None, fee: int = 0
) -> dict[str, Any]:
    created = now()
    fee_detail = {
        "amount": fee,
        "application": None,
        "currency": currency,
        "description": "Stripe processing fees",
        "type": "stripe_fee",
    }
    return {
        "amount": amount,
        "available_on": created,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [fee_detail] if fee else [],
        "id": new_id("txn"),
        "net": amount - fee,
        "object": "balance_transaction",
        "reporting_category": kind,
        "source": source,
        "status": "available",
        "type": kind,
    }


def refund(
    *, amount: int, charge_obj: dict[str, Any], reason: str | None, metadata: dict[str, str]
) -> dict[str, Any]:
    return {
        **nulls("balance_transaction customer_account receipt_number source_transfer_reversal"),
        "amount": amount,
        "charge": charge_obj["id"],
        "created": now(),
        "currency": charge_obj["currency"],
        "customer": charge_obj["customer"],
        "destination_details": {
            "card": {
                "reference": f"{secrets.randbelow(10**23):023d}",
                "reference_status": "available",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "id": new_id("re"),
        "metadata": metadata,
        "object": "refund",
        "payment_intent": charge_obj["payment_intent"],
        "payment_method": charge_obj["payment_method"],
        "reason": reason,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def transfer(
    *,
    amount: int,
    currency: str,
    destination: str,
    description: str | None,
    metadata: dict[str, str],
    source_transaction: str | None,
    transfer_group: str | None,
) -> dict[str, Any]:
    tr_id = new_id("tr")
    return {
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": None,
        "created": now(),
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": new_id("py", 14),
        "id": tr_id,
        "livemode": False,
        "metadata": metadata,
        "object": "transfer",
        "reversals": list_object([], f"/v1/transfers/{tr_id}/reversals"),
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": "card",
        "transfer_group": transfer_group,
    }


# What Stripe lists as due for a new account until its holder completes hosted onboarding.
ONBOARDING_DUE = [
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "representative.first_name",
    "representative.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]


def requirements(due: list[str]) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


def _controller(kind: str) -> dict[str, Any]:
    if kind == "standard":
        return {"type": "account"}
    return {
        "fees": {"payer": "application_express" if kind == "express" else "application"},
        "is_controller": True,
        "losses": {"payments": "application"},
        "requirement_collection": "stripe" if kind == "express" else "application",
        "stripe_dashboard": {"type": "express" if kind == "express" else "none"},
        "type": "application",
    }


def account(
    *,
    kind: str,
    country: str,
    email: str | None,
    metadata: dict[str, str],
    capabilities: dict[str, str],
    business_profile: dict[str, Any],
    business_type: str | None,
) -> dict[str, Any]:
    acct_id = new_id("acct", 16)
    profile = nulls(
        "annual_revenue estimated_worker_count mcc minority_owned_business_designation name "
        "product_description support_address support_email support_phone support_url url"
    )
    profile.update(business_profile)
    descriptors = nulls("statement_descriptor_prefix_kana statement_descriptor_prefix_kanji")
    return {
        "business_profile": profile,
        "business_type": business_type,
        "capabilities": capabilities,
        "charges_enabled": False,
        "controller": _controller(kind),
        "country": country,
        "created": now(),
        "default_currency": COUNTRY_CURRENCY[country],
        "details_submitted": False,
        "email": email,
        "external_accounts": list_object([], f"/v1/accounts/{acct_id}/external_accounts"),
        "future_requirements": requirements([]),
        "id": acct_id,
        "metadata": metadata,
        "object": "account",
        "payouts_enabled": False,
        "requirements": requirements(ONBOARDING_DUE),
        "settings": {
            "bacs_debit_payments": nulls("display_name service_user_number"),
            "branding": nulls("icon logo primary_color secondary_color"),
            "card_issuing": {"tos_acceptance": nulls("date ip")},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
                **descriptors,
            },
            "dashboard": {"display_name": profile["name"], "timezone": "Etc/UTC"},
            "invoices": nulls("default_account_tax_ids hosted_payment_method_save"),
            "payments": {
                **nulls("statement_descriptor statement_descriptor_kana"),
                **nulls("statement_descriptor_kanji"),
                **descriptors,
            },
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
            "sepa_debit_payments": {},
        },
        "tos_acceptance": nulls("date ip user_agent"),
        "type": kind,
    }


def _external_requirements() -> dict[str, Any]:
    return {"currently_due": [], "errors": [], "past_due": [], "pending_verification": []}


def external_bank_account(
    *,
    account_id: str,
    country: str,
    currency: str,
    routing_number: str,
    account_number: str,
    holder_type: str,
) -> dict[str, Any]:
    """A bank account payouts go to, as an Express account's holder gives it in onboarding
    (Stripe's External Account Bank Account object, seen by the platform controlling it)."""
    return {
        "account": account_id,
        "account_holder_name": None,
        "account_holder_type": holder_type,
        "account_type": None,
        "available_payout_methods": ["standard"],
        "bank_name": "STRIPE TEST BANK",
        "country": country,
        "currency": currency,
        "default_for_currency": True,
        "fingerprint": bank_fingerprint(country, routing_number, account_number),
        "future_requirements": _external_requirements(),
        "id": new_id("ba"),
        "last4": account_number[-4:],
        "metadata": {},
        "object": "bank_account",
        "requirements": _external_requirements(),
        "routing_number": routing_number,
        "status": "new",
    }


def external_card(*, account_id: str, card: TestCard, currency: str) -> dict[str, Any]:
    """A debit card payouts go to (Stripe's External Account Card object). Its fingerprint is
    the card number's, the same as a PaymentMethod of that card carries. `default_for_currency`
    is absent: Stripe shows it only where the platform collects requirements (Custom)."""
    return {
        **nulls(
            "address_city address_country address_line1 address_line1_check address_line2 "
            "address_state address_zip address_zip_check cvc_check dynamic_last4 name "
            "tokenization_method"
        ),
        "account": account_id,
        "available_payout_methods": ["standard", "instant"],
        "brand": CARD_BRANDS.get(card.brand, "Unknown"),
        "country": "US",
        "currency": currency,
        "exp_month": 12,
        "exp_year": time.gmtime(now()).tm_year + 3,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "id": new_id("card"),
        "last4": card.last4,
        "metadata": {},
        "object": "card",
        "regulated_status": "unregulated",
        "status": "new",
    }


def account_link(url: str, created: int, expires_at: int) -> dict[str, Any]:
    return {"created": created, "expires_at": expires_at, "object": "account_link", "url": url}


def login_link(url: str, created: int) -> dict[str, Any]:
    return {"created": created, "object": "login_link", "url": url}


def balance(available: dict[str, int]) -> dict[str, Any]:
    currencies = sorted(available or {"usd": 0})
    return {
        "available": [
            {
                "amount": available.get(c, 0),
                "currency": c,
                "source_types": {"card": available.get(c, 0)},
            }
            for c in currencies
        ],
        "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
        "livemode": False,
        "object": "balance",
        "pending": [{"amount": 0, "currency": c, "source_types": {"card": 0}} for c in currencies],
    }


def event(
    *,
    kind: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None,
    api_version: str | None,
    request: dict[str, str | None],
    pending_webhooks: int,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "api_version": api_version,
        "created": now(),
        "data": data,
        "id": new_id("evt"),
        "livemode": False,
        "object": "event",
        "pending_webhooks": pending_webhooks,
        "request": request,
        "type": kind,
    }
