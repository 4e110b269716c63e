"""A strict local Stripe-compatible HTTP server for development and tests.

The official `stripe` SDK talks to it over real HTTP (point `base_addresses["api"]` at it). It
speaks Stripe's wire format: form-encoded requests with bracketed keys, JSON responses, Stripe's
error shape and statuses, `Request-Id`, and idempotency keys scoped per API key. Connected-account
onboarding, Checkout in setup mode (saving a card) and the Express dashboard a login link opens
are small hosted pages; webhooks are signed exactly as Stripe signs them and are delivered in the
background with retries.

    python -m dev.stripe_server --port 12111 --data data/stripe.json \
        --webhook-url http://127.0.0.1:8000/v1/stripe/webhook --webhook-secret whsec_...
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import heapq
import hmac
import html
import itertools
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from dev import stripe_objects
from dev.stripe_objects import Params, StripeError, invalid, missing, money, no_such

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8000/v1/stripe/webhook"
DEFAULT_WEBHOOK_SECRET = "whsec_local_dev_secret"
IDEMPOTENCY_TTL = 24 * 3600  # Stripe prunes keys after 24 hours
ACCOUNT_LINK_TTL = 300  # Stripe's account links expire after a few minutes
LOGIN_LINK_TTL = 300  # and its Express dashboard login links are single-use and short-lived
CHECKOUT_TTL = 24 * 3600  # Stripe's Checkout Sessions expire after 24 hours by default
LIST_PARAMS = "limit starting_after ending_before"

log = logging.getLogger("dev.stripe_server")

KINDS = {
    "cus": "customer",
    "pm": "payment_method",
    "pi": "payment_intent",
    "ch": "charge",
    "txn": "balance_transaction",
    "re": "refund",
    "tr": "transfer",
    "acct": "account",
    "evt": "event",
    "cs": "checkout.session",
    "seti": "setup_intent",
}
# How Stripe names a resource in "No such ..." errors, where that is not its type.
LABELS = {
    "payment_method": "PaymentMethod",
    "balance_transaction": "balance transaction",
    "setup_intent": "setupintent",
}
# Which id-valued fields `expand[]` may replace with their object, and that object's type.
EXPANDABLE: dict[str, dict[str, str]] = {
    "customer": {"invoice_settings.default_payment_method": "payment_method"},
    "payment_method": {"customer": "customer"},
    "payment_intent": {
        "customer": "customer",
        "payment_method": "payment_method",
        "latest_charge": "charge",
    },
    "charge": {
        "balance_transaction": "balance_transaction",
        "customer": "customer",
        "payment_intent": "payment_intent",
    },
    "refund": {
        "balance_transaction": "balance_transaction",
        "charge": "charge",
        "payment_intent": "payment_intent",
    },
    "transfer": {
        "balance_transaction": "balance_transaction",
        "destination": "account",
        "source_transaction": "charge",
    },
    "checkout.session": {
        "customer": "customer",
        "payment_intent": "payment_intent",
        "setup_intent": "setup_intent",
    },
    "setup_intent": {"customer": "customer", "payment_method": "payment_method"},
    "external_account": {"account": "account"},
}
CAPABILITIES = frozenset({"card_payments", "transfers", "link_payments", "legacy_payments"})
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


@dataclass
class Ctx:
    request_id: str
    idempotency_key: str | None
    base_url: str
    api_version: str | None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ApiRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    query: str
    body: str
    base_url: str


@dataclass
class ApiResponse:
    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., dict[str, Any]]
    params: frozenset[str]
    kind: str  # type of the returned object ("list:<type>" for lists), for expand checks


_ROUTES: list[_Route] = []


def route(method: str, path: str, kind: str, params: str = "") -> Callable[[Any], Any]:
    pattern = re.compile("^" + path.replace("{id}", "([^/]+)") + "$")

    def register(handler: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        _ROUTES.append(_Route(method, pattern, handler, frozenset(params.split()), kind))
        return handler

    return register


def list_route(path: str, kind: str, filters: str = "") -> None:
    """Register Stripe's list endpoint for `kind` at `path`: newest first, paged by LIST_PARAMS,
    and narrowed to the objects whose field equals each of `filters` that the request gives."""
    names = filters.split()

    def handler(self: LocalStripe, ctx: Ctx, p: Params) -> dict[str, Any]:
        return self._list(kind, p, path, {name: p.string(name) for name in names})

    route("GET", path, f"list:{kind}", f"{LIST_PARAMS} {filters}")(handler)


def _idempotency_error(message: str) -> StripeError:
    return StripeError(400, message, type="idempotency_error", stored=False)


def _not_attached(ref: str) -> StripeError:
    return StripeError(
        400,
        f"The customer does not have a payment method with the ID {ref}. The payment method "
        "must be attached to the customer.",
        param="invoice_settings[default_payment_method]",
        code="resource_missing",
    )


def _url(p: Params, name: str, *, required: bool = False) -> str | None:
    url = p.string(name, required=required)
    if url and not re.match(r"^https?://[^\s/]+", url):
        raise invalid("Not a valid URL", name, "url_invalid")
    return url


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"


class Store:
    """All server state as one JSON-able dict, optionally mirrored to a file after each change."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.data = self.empty()
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.data = json.load(fh)

    @staticmethod
    def empty() -> dict[str, Any]:
        return {
            "objects": {kind: {} for kind in KINDS.values()},
            "account_links": {},
            "login_links": {},
            "idempotency": {},
            "requests": [],
            "api_version": None,
        }

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        # setdefault: a state file saved before a kind existed has no table for it yet.
        objects: dict[str, dict[str, Any]] = self.data["objects"].setdefault(kind, {})
        return objects

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects(obj["object"])[obj["id"]] = obj
        return obj

    def newest_first(self, kind: str) -> list[dict[str, Any]]:
        items = list(reversed(self.objects(kind).values()))
        return sorted(items, key=lambda o: -o["created"])

    def save(self) -> None:
        if not self.path:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        # Write a sibling temp file and rename it so a crash never leaves a torn file.
        fd, tmp = tempfile.mkstemp(prefix=".stripe-", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise


class WebhookSender:
    """Delivers signed events on one background thread, retrying with exponential backoff."""

    ATTEMPTS = 6
    FIRST_DELAY = 0.25
    MAX_DELAY = 5.0

    def __init__(self, url: str, secret: str, on_delivered: Callable[[str], None]) -> None:
        self.url = url
        self.secret = secret
        self._on_delivered = on_delivered
        self._queue: list[tuple[float, int, int, str, bytes, int]] = []
        self._seq = itertools.count()
        self._generation = 0  # bumped by clear() so in-flight retries of old events are dropped
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def send(self, event_id: str, payload: bytes) -> None:
        with self._cond:
            self._push(time.monotonic(), self._generation, event_id, payload, 0)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
                self._thread.start()

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()
            self._generation += 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def signature(self, payload: bytes, timestamp: int) -> str:
        signed = f"{timestamp}.".encode() + payload
        digest = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"

    def _push(self, due: float, generation: int, event_id: str, payload: bytes, tries: int) -> None:
        heapq.heappush(self._queue, (due, next(self._seq), generation, event_id, payload, tries))
        self._cond.notify_all()

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while True:
                with self._cond:
                    while not self._closed and (
                        not self._queue or self._queue[0][0] > time.monotonic()
                    ):
                        wait = self._queue[0][0] - time.monotonic() if self._queue else None
                        self._cond.wait(timeout=wait)
                    if self._closed:
                        return
                    _, _, generation, event_id, payload, tries = heapq.heappop(self._queue)
                if self._post(client, payload):
                    self._on_delivered(event_id)
                    continue
                with self._cond:
                    if tries + 1 < self.ATTEMPTS and generation == self._generation:
                        delay = min(self.FIRST_DELAY * 2**tries, self.MAX_DELAY)
                        self._push(
                            time.monotonic() + delay, generation, event_id, payload, tries + 1
                        )
                    elif generation == self._generation:
                        log.warning("webhook %s not delivered to %s; giving up", event_id, self.url)

    def _post(self, client: httpx.Client, payload: bytes) -> bool:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": self.signature(payload, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            response = client.post(self.url, content=payload, headers=headers)
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 300


class LocalStripe:
    """The server's behaviour, independent of the HTTP framework; every call is thread safe."""

    def __init__(
        self, data_path: str | None, webhook_url: str | None, webhook_secret: str | None
    ) -> None:
        self.store = Store(data_path)
        self.lock = threading.RLock()
        self.failures: list[dict[str, Any]] = []
        self.webhooks = (
            WebhookSender(webhook_url, webhook_secret or DEFAULT_WEBHOOK_SECRET, self._delivered)
            if webhook_url
            else None
        )
        if self.webhooks:
            for event in self.store.objects("event").values():
                if event["pending_webhooks"]:
                    self.webhooks.send(event["id"], _dump(event).encode())

    def close(self) -> None:
        if self.webhooks:
            self.webhooks.close()

    # --- request pipeline --------------------------------------------------------------------

    def handle(self, req: ApiRequest) -> ApiResponse:
        request_id = stripe_objects.new_id("req", 14)
        headers = {"Request-Id": request_id}
        idem_key = req.headers.get("idempotency-key") if req.method == "POST" else None
        if idem_key:
            headers["Idempotency-Key"] = idem_key
        with self.lock:
            response = self._handle(req, request_id, idem_key, headers)
            if req.method == "POST":
                self.store.data["requests"].append(
                    {
                        "method": req.method,
                        "path": req.path,
                        "idempotency_key": idem_key,
                        "replayed": response.headers.get("Idempotent-Replayed") == "true",
                        "status": response.status,
                        "request_id": request_id,
                        "created": stripe_objects.now(),
                    }
                )
                self.store.save()
            return response

    def _handle(
        self, req: ApiRequest, request_id: str, idem_key: str | None, headers: dict[str, str]
    ) -> ApiResponse:
        def fail(error: StripeError) -> ApiResponse:
            return ApiResponse(error.status, _dump(error.body()), headers)

        try:
            api_key = self._authenticate(req.headers)
            self._inject_failure(req)
            if "stripe-account" in req.headers:
                raise invalid("The Stripe-Account header is not supported by this local server.")
            if req.method == "POST" and "json" in req.headers.get("content-type", ""):
                raise invalid("Request bodies must be application/x-www-form-urlencoded.")
            raw = stripe_objects.decode_form(req.body if req.method == "POST" else req.query)
        except StripeError as error:
            return fail(error)
        version = req.headers.get("stripe-version")
        if version:
            headers["Stripe-Version"] = version
            # Like Stripe, the first API version used becomes the one webhooks are rendered in.
            self.store.data["api_version"] = self.store.data["api_version"] or version

        record_key = f"{api_key}\n{idem_key}"
        if idem_key:
            record = self.store.data["idempotency"].get(record_key)
            if record and record["created"] < stripe_objects.now() - IDEMPOTENCY_TTL:
                record = None
            if record:
                if record["path"] != req.path:
                    return fail(
                        _idempotency_error(
                            "Keys for idempotent requests can only be used for the same "
                            f"endpoint they were first used for ('{record['path']}' vs "
                            f"'{req.path}'). Try using a key other than '{idem_key}' if you "
                            "meant to execute a different request."
                        )
                    )
                if record["params"] != raw:
                    return fail(
                        _idempotency_error(
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than "
                            f"'{idem_key}' if you meant to execute a different request."
                        )
                    )
                headers.update(
                    {"Idempotent-Replayed": "true", "Original-Request": record["request_id"]}
                )
                return ApiResponse(record["status"], record["body"], headers)

        ctx = Ctx(request_id, idem_key, req.base_url, version)
        try:
            status, body = 200, _dump(self._dispatch(ctx, req.method, req.path, raw))
            stored = True
        except StripeError as error:
            status, body, stored = error.status, _dump(error.body()), error.stored
        except Exception:
            # A bug here must still answer like Stripe does (and so raise stripe.APIError).
            log.exception("unexpected error handling %s %s", req.method, req.path)
            failure = StripeError(500, "An unknown error occurred", type="api_error")
            status, body, stored = 500, _dump(failure.body()), False
        if idem_key and stored:
            self.store.data["idempotency"][record_key] = {
                "path": req.path,
                "params": raw,
                "status": status,
                "body": body,
                "request_id": request_id,
                "created": stripe_objects.now(),
            }
        self._send_events(ctx.events)
        return ApiResponse(status, body, headers)

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        key = ""
        if auth.startswith("Bearer "):
            key = auth[len("Bearer ") :].strip()
        elif auth.startswith("Basic "):
            try:
                key = base64.b64decode(auth[len("Basic ") :]).decode().split(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
            )
        if not re.fullmatch(r"sk_test_\w+", key):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            raise StripeError(401, f"Invalid API Key provided: {masked}")
        return key

    def _inject_failure(self, req: ApiRequest) -> None:
        key = req.headers.get("idempotency-key") or ""
        for rule in self.failures:
            if (
                req.path.startswith(rule["path_prefix"])
                and rule["method"] in (None, req.method)
                and key.startswith(rule["idempotency_key_prefix"] or "")
            ):
                rule["count"] -= 1
                if rule["count"] <= 0:
                    self.failures.remove(rule)
                status = rule["status"]
                kind = "api_error" if status >= 500 else "invalid_request_error"
                raise StripeError(
                    status,
                    "An unknown error occurred (injected by /_test/failures).",
                    type="rate_limit_error" if status == 429 else kind,
                    code="rate_limit" if status == 429 else None,
                    stored=False,
                )

    def _dispatch(self, ctx: Ctx, method: str, path: str, raw: dict[str, Any]) -> dict[str, Any]:
        for candidate in _ROUTES:
            match = candidate.pattern.match(path)
            if match and candidate.method == method:
                params = Params(raw, candidate.params)
                self._check_expand(candidate.kind, params.expand())
                return candidate.handler(self, ctx, params, *match.groups())
        raise StripeError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
            stored=False,
        )

    # --- rendering -----------------------------------------------------------------------------

    @staticmethod
    def _check_expand(kind: str, paths: list[str]) -> None:
        for path in paths:
            current, rest = kind, path
            if current.startswith("list:"):
                if not rest.startswith("data."):
                    raise invalid(f"This property cannot be expanded ({path}).", "expand")
                current, rest = current[5:], rest[5:]
            while rest:
                fields = EXPANDABLE.get(current, {})
                found = next((f for f in fields if rest == f or rest.startswith(f + ".")), None)
                if found is None:
                    raise invalid(f"This property cannot be expanded ({path}).", "expand")
                current, rest = fields[found], rest[len(found) + 1 :]

    def _render(self, obj: dict[str, Any], expand: Sequence[str] = ()) -> dict[str, Any]:
        # Keys starting with "_" are this server's private bookkeeping, never sent.
        out = copy.deepcopy({k: v for k, v in obj.items() if not k.startswith("_")})
        for path in expand:
            out = self._expand(out, path.split("."))
        return out

    def _expand(self, node: Any, parts: list[str]) -> Any:
        if isinstance(node, str):
            target = self._find(node)
            node = self._render(target) if target else node
        if not parts or not isinstance(node, dict):
            return node
        head, rest = parts[0], parts[1:]
        if head == "data" and node.get("object") == "list":
            node["data"] = [self._expand(item, rest) for item in node["data"]]
        elif head in node:
            node[head] = self._expand(node[head], rest)
        return node

    def _find(self, object_id: str) -> dict[str, Any] | None:
        kind = KINDS.get(object_id.split("_", 1)[0])
        return self.store.objects(kind).get(object_id) if kind else None

    def _get(self, kind: str, object_id: str | None, param: str = "id") -> dict[str, Any]:
        obj = self.store.objects(kind).get(object_id or "")
        if obj is None:
            raise no_such(LABELS.get(kind, kind), object_id or "", param)
        return obj

    def _list(
        self, kind: str, p: Params, url: str, filters: dict[str, str | None]
    ) -> dict[str, Any]:
        items = [
            o
            for o in self.store.newest_first(kind)
            if all(want is None or o.get(key) == want for key, want in filters.items())
        ]
        return self._paged(items, p, url, LABELS.get(kind, kind))

    def _paged(
        self, items: list[dict[str, Any]], p: Params, url: str, label: str
    ) -> dict[str, Any]:
        """One page of a list, newest first, by Stripe's `limit` and cursors."""
        limit = p.integer("limit", minimum=1) or 10
        if limit > 100:
            raise invalid("This value must be less than or equal to 100.", "limit")
        ids = [o["id"] for o in items]
        after, before = p.string("starting_after"), p.string("ending_before")
        for cursor, param in ((after, "starting_after"), (before, "ending_before")):
            if cursor and cursor not in ids:
                raise no_such(label, cursor, param)
        if before:
            end = ids.index(before)
            page, has_more = items[max(end - limit, 0) : end], end - limit > 0
        else:
            start = ids.index(after) + 1 if after else 0
            page, has_more = items[start : start + limit], start + limit < len(items)
        data = [self._render(o) for o in page]
        return self._render(stripe_objects.list_object(data, url, has_more), p.expand())

    # --- events --------------------------------------------------------------------------------

    def _emit(
        self,
        ctx: Ctx | None,
        kind: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        event = stripe_objects.event(
            kind=kind,
            obj=self._render(obj),
            previous=previous,
            api_version=self.store.data["api_version"],
            request={
                "id": ctx.request_id if ctx else None,
                "idempotency_key": ctx.idempotency_key if ctx else None,
            },
            pending_webhooks=1 if self.webhooks else 0,
        )
        self.store.put(event)
        if ctx:
            ctx.events.append(event)
        return event

    def _send_events(self, events: list[dict[str, Any]]) -> None:
        if self.webhooks:
            for event in events:
                self.webhooks.send(event["id"], _dump(event).encode())

    def _delivered(self, event_id: str) -> None:
        with self.lock:
            event = self.store.objects("event").get(event_id)
            if event:
                event["pending_webhooks"] = 0
                self.store.save()

    # --- customers and payment methods --------------------------------------------------------

    def _resolve_pm(
        self, ref: str, param: str
    ) -> tuple[stripe_objects.TestCard, dict[str, Any] | None]:
        """A payment method reference: a magic test id (not yet an object) or a stored `pm_`."""
        if ref in stripe_objects.TEST_CARDS:
            return stripe_objects.TEST_CARDS[ref], None
        stored = self.store.objects("payment_method").get(ref)
        if stored is None:
            raise no_such("PaymentMethod", ref, param)
        return stripe_objects.TEST_CARDS[stored["_test_card"]], stored

    def _materialize_pm(
        self, card: stripe_objects.TestCard, customer_id: str | None
    ) -> dict[str, Any]:
        pm = stripe_objects.payment_method(card, customer_id)
        pm["_test_card"] = next(k for k, v in stripe_objects.TEST_CARDS.items() if v is card)
        return self.store.put(pm)

    def _attach(
        self, ref: str, param: str, customer_id: str, *, dry_run: bool = False
    ) -> dict[str, Any] | None:
        card, stored = self._resolve_pm(ref, param)
        if stored is not None and stored["customer"] not in (None, customer_id):
            raise StripeError(
                400,
                "The payment method you provided has already been attached to a customer.",
                param=param,
            )
        if dry_run:
            return None
        if stored is None:
            return self._materialize_pm(card, customer_id)
        stored["customer"] = customer_id
        return stored

    def _default_pm(self, customer_id: str, ref: str) -> str:
        """`invoice_settings.default_payment_method`: a magic id names its attached copy."""
        for pm in self.store.newest_first("payment_method"):
            if pm["customer"] == customer_id and ref in (pm["id"], pm["_test_card"]):
                return str(pm["id"])
        raise _not_attached(ref)

    def _customer_fields(self, p: Params) -> tuple[dict[str, Any], str | None]:
        settings = p.mapping("invoice_settings") or {}
        for key in settings:
            if key not in ("default_payment_method", "custom_fields", "footer"):
                raise invalid(
                    f"Received unknown parameter: invoice_settings[{key}]",
                    f"invoice_settings[{key}]",
                    "parameter_unknown",
                )
        fields: dict[str, Any] = {
            name: p.string(name) for name in ("name", "description", "phone") if p.has(name)
        }
        if p.has("email"):
            fields["email"] = p.email()
        if p.has("address"):
            given = p.mapping("address")
            fields["address"] = stripe_objects.postal_address(given) if given else None
        default_pm = settings.get("default_payment_method")
        if default_pm is not None and not isinstance(default_pm, str):
            raise invalid("Invalid string", "invoice_settings[default_payment_method]")
        return fields, default_pm

    @route(
        "POST",
        "/v1/customers",
        "customer",
        "name email description phone address metadata payment_method invoice_settings",
    )
    def create_customer(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        fields, default_pm = self._customer_fields(p)
        metadata = p.metadata() or {}
        pm_ref = p.string("payment_method")
        if pm_ref:
            self._attach(pm_ref, "payment_method", "", dry_run=True)
        if default_pm and default_pm != pm_ref:
            raise _not_attached(default_pm)
        cus = stripe_objects.customer(
            name=fields.get("name"),
            email=fields.get("email"),
            description=fields.get("description"),
            phone=fields.get("phone"),
            address=p.mapping("address"),
            metadata=stripe_objects.apply_metadata({}, metadata),
        )
        self.store.put(cus)
        if pm_ref:
            pm = self._attach(pm_ref, "payment_method", cus["id"])
            if default_pm and pm:
                cus["invoice_settings"]["default_payment_method"] = pm["id"]
        return self._render(cus, p.expand())

    @route("GET", "/v1/customers/{id}", "customer")
    def retrieve_customer(self, ctx: Ctx, p: Params, cus_id: str) -> dict[str, Any]:
        return self._render(self._get("customer", cus_id), p.expand())

    @route(
        "POST",
        "/v1/customers/{id}",
        "customer",
        "name email description phone address metadata invoice_settings",
    )
    def update_customer(self, ctx: Ctx, p: Params, cus_id: str) -> dict[str, Any]:
        cus = self._get("customer", cus_id)
        fields, default_pm = self._customer_fields(p)
        metadata = p.metadata()
        resolved = self._default_pm(cus_id, default_pm) if default_pm else None
        cus.update(fields)
        cus["metadata"] = stripe_objects.apply_metadata(cus["metadata"], metadata)
        if default_pm is not None:
            cus["invoice_settings"]["default_payment_method"] = resolved
        return self._render(cus, p.expand())

    @route("GET", "/v1/payment_methods/{id}", "payment_method")
    def retrieve_payment_method(self, ctx: Ctx, p: Params, pm_id: str) -> dict[str, Any]:
        card, stored = self._resolve_pm(pm_id, "id")
        # A magic test id used on its own yields a fresh, unattached card each time, as on Stripe.
        return self._render(stored or stripe_objects.payment_method(card, None), p.expand())

    @route("POST", "/v1/payment_methods/{id}/attach", "payment_method", "customer")
    def attach_payment_method(self, ctx: Ctx, p: Params, pm_id: str) -> dict[str, Any]:
        customer_id = p.string("customer", required=True)
        self._get("customer", customer_id, "customer")
        pm = self._attach(pm_id, "payment_method", str(customer_id))
        assert pm is not None
        return self._render(pm, p.expand())

    # --- payment intents and charges ----------------------------------------------------------

    @route(
        "POST",
        "/v1/payment_intents",
        "payment_intent",
        "amount currency customer payment_method confirm off_session transfer_group metadata "
        "description capture_method payment_method_types automatic_payment_methods "
        "allowed_payment_method_types excluded_payment_method_types "
        "return_url receipt_email statement_descriptor statement_descriptor_suffix "
        "setup_future_usage error_on_requires_action",
    )
    def create_payment_intent(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        amount = p.integer("amount", required=True)
        currency = p.currency()
        assert amount is not None  # required=True
        info = stripe_objects.CURRENCIES[currency]
        if amount < info.minimum:
            raise invalid(
                f"Amount must be at least {money(info.minimum, currency)} {currency}",
                "amount",
                "amount_too_small",
            )
        if amount > 99_999_999:
            raise invalid(
                f"Amount must be no more than {money(99_999_999, currency)}",
                "amount",
                "amount_too_large",
            )
        confirm = bool(p.boolean("confirm"))
        for name in ("off_session", "return_url", "error_on_requires_action"):
            if p.has(name) and not confirm:
                raise invalid(f"You can only pass in `{name}` when `confirm` is `true`.", name)
        p.string("off_session", choices=("true", "false", "one_off", "recurring"))
        p.boolean("error_on_requires_action")
        automatic = self._method_selection(p, ctx.api_version)
        customer_id = p.string("customer")
        pm_ref = p.string("payment_method")
        description, transfer_group = p.string("description"), p.string("transfer_group")
        metadata = stripe_objects.apply_metadata({}, p.metadata())
        capture = p.string("capture_method", choices=("automatic", "automatic_async"))
        receipt_email = p.string("receipt_email")
        descriptor = p.string("statement_descriptor")
        suffix = p.string("statement_descriptor_suffix")
        future_usage = p.string("setup_future_usage", choices=("on_session", "off_session"))
        if customer_id:
            self._get("customer", customer_id, "customer")
        pm = self._intent_payment_method(
            pm_ref, customer_id, automatic, confirm=confirm, return_url=p.string("return_url")
        )
        pi = stripe_objects.payment_intent(
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            payment_method_id=pm["id"] if pm else None,
            automatic=automatic,
            description=description,
            metadata=metadata,
            transfer_group=transfer_group,
            capture_method=capture or "automatic_async",
            receipt_email=receipt_email,
            statement_descriptor=descriptor,
            statement_descriptor_suffix=suffix,
            setup_future_usage=future_usage,
        )
        self.store.put(pi)
        if pm and confirm:
            self._confirm(ctx, pi, pm)
        return self._render(pi, p.expand())

    @staticmethod
    def _method_selection(p: Params, api_version: str | None) -> dict[str, Any] | None:
        """How the intent picks payment methods: dynamic (the returned settings) or cards only."""
        names = (
            "allowed_payment_method_types automatic_payment_methods excluded_payment_method_types"
        )
        chosen = [name for name in names.split() + ["payment_method_types"] if p.has(name)]
        # Excluding types narrows dynamic methods; every other pair contradicts itself.
        dynamic = {"automatic_payment_methods", "excluded_payment_method_types"}
        if len(chosen) > 1 and set(chosen) != dynamic:
            raise invalid(
                f"You may only specify one of these parameters: {', '.join(chosen)}.",
                code="parameters_exclusive",
            )
        if LocalStripe._lists_types(p, api_version):
            return None
        settings = Params(
            p.mapping("automatic_payment_methods") or {}, frozenset({"enabled", "allow_redirects"})
        )
        if settings.boolean("enabled") is False:
            return None
        redirects = settings.string("allow_redirects", choices=("always", "never"))
        return {"allow_redirects": redirects or "always", "enabled": True}

    @staticmethod
    def _lists_types(p: Params, api_version: str | None) -> bool:
        """Whether the request lists the payment method types it takes (here: with cards)."""
        if p.has("payment_method_types") and (api_version or "") >= "2026-09-30":
            raise invalid(
                "The `payment_method_types` parameter is no longer supported on API version "
                f"{api_version}. Use `allowed_payment_method_types` or dynamic payment methods "
                "instead.",
                "payment_method_types",
                "payment_method_types_no_longer_supported",
            )
        for name in ("allowed_payment_method_types", "payment_method_types"):
            if p.has(name):
                if not isinstance(p.raw[name], list) or "card" not in p.raw[name]:
                    raise invalid(
                        f"This local server supports only card payments: {name} must include "
                        "'card'.",
                        name,
                    )
                return True
        return False

    def _intent_payment_method(
        self,
        pm_ref: str | None,
        customer_id: str | None,
        automatic: dict[str, Any] | None,
        *,
        confirm: bool,
        return_url: str | None,
    ) -> dict[str, Any] | None:
        """Check the payment method an intent will use; a magic test id becomes a `pm_`."""
        card, pm = self._resolve_pm(pm_ref, "payment_method") if pm_ref else (None, None)
        if pm is not None and pm["customer"] and pm["customer"] != customer_id:
            raise invalid(
                f"The provided PaymentMethod {pm['id']} is attached to customer "
                f"{pm['customer']}; pass that customer's ID as `customer` to use it.",
                "payment_method",
            )
        if confirm and not pm_ref:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method. "
                + (
                    f"To confirm the PaymentIntent with {customer_id}, specify a payment method "
                    "attached to this customer along with the customer ID."
                    if customer_id
                    else "Update the PaymentIntent with a payment method and then confirm it again."
                ),
                "payment_method",
            )
        if confirm and automatic and automatic["allow_redirects"] != "never" and not return_url:
            raise invalid(
                "A `return_url` must be specified because this Payment Intent is configured to "
                "automatically accept the payment methods enabled in the Dashboard, some of "
                "which may require a full page redirect to succeed. If you do not want to "
                "accept redirect-based payment methods, set "
                "`automatic_payment_methods[enabled]` to `true` and "
                "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup "
                "Intents and Payment Intents.",
                "return_url",
            )
        return self._materialize_pm(card, None) if card is not None and pm is None else pm

    def _confirm(self, ctx: Ctx, pi: dict[str, Any], pm: dict[str, Any]) -> None:
        """Charge the card: succeed, or record the decline and raise Stripe's 402 card error."""
        card = stripe_objects.TEST_CARDS[pm["_test_card"]]
        charge = stripe_objects.charge(
            intent=pi, card=card, payment_method_id=pm["id"], receipt_base=ctx.base_url
        )
        pi["latest_charge"] = charge["id"]
        if card.decline_code is None:
            self._book(charge, pi["amount"], "charge", stripe_objects.processing_fee(pi["amount"]))
            pi.update(
                status="succeeded",
                amount_received=pi["amount"],
                payment_method=pm["id"],
                last_payment_error=None,
            )
            self._emit(ctx, "payment_intent.succeeded", pi)
            return
        self.store.put(charge)
        decline = StripeError(
            402,
            card.message,
            type="card_error",
            code=card.error_code,
            decline_code=card.decline_code,
            advice_code="try_again_later",
            charge=charge["id"],
            payment_method=self._render(pm),
        )
        # Stripe detaches the failed method from the intent and keeps it in last_payment_error.
        pi.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error=dict(decline.error),
        )
        self._emit(ctx, "payment_intent.payment_failed", pi)
        decline.error["payment_intent"] = self._render(pi)
        raise decline

    list_route("/v1/payment_intents", "payment_intent", "customer")

    @route("GET", "/v1/payment_intents/{id}", "payment_intent")
    def retrieve_payment_intent(self, ctx: Ctx, p: Params, pi_id: str) -> dict[str, Any]:
        return self._render(self._get("payment_intent", pi_id), p.expand())

    @route(
        "POST",
        "/v1/payment_intents/{id}/confirm",
        "payment_intent",
        "payment_method off_session return_url error_on_requires_action",
    )
    def confirm_payment_intent(self, ctx: Ctx, p: Params, pi_id: str) -> dict[str, Any]:
        pi = self._get("payment_intent", pi_id)
        p.string("off_session", choices=("true", "false", "one_off", "recurring"))
        p.boolean("error_on_requires_action")
        pm_ref = p.string("payment_method") or pi["payment_method"]
        if pi["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise StripeError(
                400,
                f"You cannot confirm this PaymentIntent because it has a status of "
                f"{pi['status']}. Only a PaymentIntent with one of the following statuses may "
                "be confirmed: requires_confirmation, requires_payment_method, requires_action.",
                code="payment_intent_unexpected_state",
                payment_intent=self._render(pi),
            )
        pm = self._intent_payment_method(
            pm_ref,
            pi["customer"],
            pi["automatic_payment_methods"],
            confirm=True,
            return_url=p.string("return_url"),
        )
        assert pm is not None
        pi["payment_method"] = pm["id"]
        self._confirm(ctx, pi, pm)
        return self._render(pi, p.expand())

    list_route("/v1/charges", "charge", "payment_intent customer")

    @route("GET", "/v1/charges/{id}", "charge")
    def retrieve_charge(self, ctx: Ctx, p: Params, ch_id: str) -> dict[str, Any]:
        return self._render(self._get("charge", ch_id), p.expand())

    @route("GET", "/v1/balance_transactions/{id}", "balance_transaction")
    def retrieve_balance_transaction(self, ctx: Ctx, p: Params, txn_id: str) -> dict[str, Any]:
        return self._render(self._get("balance_transaction", txn_id), p.expand())

    def _book(self, obj: dict[str, Any], amount: int, kind: str, fee: int = 0) -> None:
        """Store `obj` with the balance transaction that moves its money on the platform."""
        txn = stripe_objects.balance_transaction(
            amount=amount,
            currency=obj["currency"],
            source=obj["id"],
            kind=kind,
            description=obj.get("description"),
            fee=fee,
        )
        obj["balance_transaction"] = self.store.put(txn)["id"]
        self.store.put(obj)

    def _available(self) -> dict[str, int]:
        # Charges settle at once here (as with Stripe's 4000000000000077 test card).
        totals: dict[str, int] = {}
        for txn in self.store.objects("balance_transaction").values():
            totals[txn["currency"]] = totals.get(txn["currency"], 0) + txn["net"]
        return totals

    @route("GET", "/v1/balance", "balance")
    def retrieve_balance(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        return stripe_objects.balance(self._available())

    # --- connected accounts -------------------------------------------------------------------

    def _capabilities(self, p: Params, current: dict[str, str]) -> dict[str, str]:
        result = dict(current)
        for name, spec in (p.mapping("capabilities") or {}).items():
            param = f"capabilities[{name}]"
            if name not in CAPABILITIES:
                raise invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")
            if not isinstance(spec, dict) or set(spec) - {"requested"}:
                raise invalid(f"Invalid object: {param}", param)
            if spec.get("requested") not in ("true", "false"):
                raise invalid(f"Invalid boolean: {spec.get('requested')}", f"{param}[requested]")
            if spec["requested"] == "true":
                result.setdefault(name, "inactive")
            else:
                result.pop(name, None)
        return result

    @staticmethod
    def _business_profile(p: Params) -> dict[str, Any]:
        profile = p.mapping("business_profile") or {}
        allowed = {
            "mcc",
            "name",
            "product_description",
            "support_email",
            "support_phone",
            "support_url",
            "url",
        }
        for key, value in profile.items():
            if key not in allowed or not isinstance(value, str):
                param = f"business_profile[{key}]"
                raise invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")
        return {k: v or None for k, v in profile.items()}

    @route(
        "POST",
        "/v1/accounts",
        "account",
        "type country email metadata capabilities business_profile business_type",
    )
    def create_account(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        kind = p.string("type", required=True, choices=("express", "standard", "custom"))
        country = (p.string("country") or "US").upper()
        if country not in stripe_objects.COUNTRY_CURRENCY:
            raise invalid(
                f"Country '{country}' is unknown. Try using a 2-character alphanumeric country "
                "code instead, such as 'US', 'EG', or 'GB'.",
                "country",
            )
        business_type = p.string(
            "business_type", choices=("individual", "company", "non_profit", "government_entity")
        )
        acct = stripe_objects.account(
            kind=str(kind),
            country=country,
            email=p.email(),
            metadata=stripe_objects.apply_metadata({}, p.metadata()),
            capabilities=self._capabilities(p, {}),
            business_profile=self._business_profile(p),
            business_type=business_type,
        )
        return self._render(self.store.put(acct), p.expand())

    @route("GET", "/v1/accounts/{id}", "account")
    def retrieve_account(self, ctx: Ctx, p: Params, acct_id: str) -> dict[str, Any]:
        return self._render(self._get("account", acct_id), p.expand())

    @route(
        "POST",
        "/v1/account_links",
        "account_link",
        "account refresh_url return_url type collect collection_options",
    )
    def create_account_link(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        acct_id = p.string("account", required=True)
        p.string("type", required=True, choices=("account_onboarding", "account_update"))
        p.string("collect", choices=("currently_due", "eventually_due"))
        p.mapping("collection_options")
        urls = {name: _url(p, name) for name in ("refresh_url", "return_url")}
        self._get("account", acct_id, "account")
        token = secrets.token_urlsafe(16)
        created = stripe_objects.now()
        self.store.data["account_links"][token] = {
            "account": acct_id,
            "expires_at": created + ACCOUNT_LINK_TTL,
            "used": False,
            **urls,
        }
        url = f"{ctx.base_url}/connect/onboarding/{acct_id}?link={token}"
        return stripe_objects.account_link(url, created, created + ACCOUNT_LINK_TTL)

    @route("POST", "/v1/accounts/{id}/login_links", "login_link")
    def create_login_link(self, ctx: Ctx, p: Params, acct_id: str) -> dict[str, Any]:
        """A single-use link into the account's Express dashboard: Stripe makes one only for
        an account using that dashboard, once its holder has finished onboarding."""
        acct = self._get("account", acct_id, "account")
        if acct["controller"].get("stripe_dashboard", {}).get("type") != "express":
            raise StripeError(
                400,
                "You can only create login links for accounts that use the Express Dashboard "
                "and are connected to your platform.",
            )
        if not acct["details_submitted"]:
            raise StripeError(
                400, "Cannot create a login link for an account that has not completed onboarding."
            )
        token = secrets.token_urlsafe(16)
        created = stripe_objects.now()
        # setdefault: a state file saved before login links existed has no table for them.
        self.store.data.setdefault("login_links", {})[token] = {
            "account": acct_id,
            "expires_at": created + LOGIN_LINK_TTL,
            "used": False,
        }
        url = f"{ctx.base_url}/express/{acct_id}?link={token}"
        return stripe_objects.login_link(url, created)

    def express_dashboard(self, account_id: str, token: str) -> Response:
        """The page a login link opens: a stand-in for the Express dashboard, saying so."""
        with self.lock:
            link = self.store.data.get("login_links", {}).get(token)
            if not link or link["account"] != account_id:
                return _page(404, "Link not found", "This login link is not valid.")
            if link["used"]:
                return _page(404, "Link already used", "Login links can be used only once.")
            if link["expires_at"] < stripe_objects.now():
                return _page(404, "Link expired", "This login link has expired.")
            link["used"] = True
            self.store.save()
            acct = self._get("account", account_id)
            paid_to = [
                f"{x.get('bank_name') or x.get('brand') or x['object']} ending in {x['last4']}"
                for x in acct["external_accounts"]["data"]
            ]
        email = f" ({html.escape(acct['email'])})" if acct["email"] else ""
        return _page(
            200,
            "Express dashboard",
            f"Test-mode Stripe Express dashboard for connected account <b>{acct['id']}</b>"
            f"{email}. On Stripe, this is where payouts, their schedule and tax forms "
            "(1099s) are.",
            f"<p>Payouts go to: {html.escape(', '.join(paid_to) or 'nowhere yet')}.</p>",
        )

    def onboarding(
        self, account_id: str, token: str, form: dict[str, str] | None, ip: str, agent: str
    ) -> Response:
        """The hosted onboarding page: GET (`form` None) shows it, POST completes onboarding
        with the payout destination the form gives: a bank account (Stripe's test one when the
        form names none) or a debit card."""
        with self.lock:
            link = self.store.data["account_links"].get(token)
            if not link or link["account"] != account_id:
                return _page(404, "Link not found", "This onboarding link is not valid.")
            if link["used"]:
                return _page(404, "Link already used", "Account links can be used only once.")
            if link["expires_at"] < stripe_objects.now():
                retry = link["refresh_url"]
                more = f' <a href="{html.escape(retry)}">Get a new link</a>.' if retry else ""
                return _page(404, "Link expired", "This onboarding link has expired." + more)
            acct = self._get("account", account_id)
            if form is None:
                return self._onboarding_form(acct, token, {}, None)
            try:
                destination = self._payout_destination(acct, form)
            except ValueError as problem:
                return self._onboarding_form(acct, token, form, str(problem))
            keys = (
                "capabilities",
                "charges_enabled",
                "details_submitted",
                "external_accounts",
                "payouts_enabled",
                "requirements",
                "tos_acceptance",
            )
            previous = copy.deepcopy({k: acct[k] for k in keys})
            capabilities = {name: "active" for name in acct["capabilities"]}
            capabilities["transfers"] = "active"
            acct.update(
                capabilities=capabilities,
                charges_enabled=True,
                details_submitted=True,
                payouts_enabled=True,
                requirements=stripe_objects.requirements([]),
                tos_acceptance={"date": stripe_objects.now(), "ip": ip, "user_agent": agent},
            )
            acct["business_type"] = acct["business_type"] or "individual"
            events = self._set_external_account(acct, destination)
            link["used"] = True
            changed = {k: v for k, v in previous.items() if acct[k] != v}
            events.append(self._emit(None, "account.updated", acct, changed))
            self.store.save()
            self._send_events(events)
        if link["return_url"]:
            return RedirectResponse(link["return_url"], status_code=303)
        return _page(200, "Onboarding complete", "You can close this page.")

    @staticmethod
    def _onboarding_form(
        acct: dict[str, Any], token: str, given: dict[str, str], error: str | None
    ) -> HTMLResponse:
        email = f" ({html.escape(acct['email'])})" if acct["email"] else ""
        problem, described = "", "payout-hint"
        if error:
            problem = f'<p id="payout-error" role="alert"><b>{html.escape(error)}</b></p>'
            described = "payout-error payout-hint"

        def field(name: str, label: str, value: str, autocomplete: str = "off") -> str:
            return (
                f'<p><label for="{name}">{label}</label><br>'
                f'<input id="{name}" name="{name}" type="text" inputmode="numeric" '
                f'autocomplete="{autocomplete}" aria-describedby="{described}" '
                f'value="{html.escape(given.get(name, value))}"></p>'
            )

        return _page(
            400 if error else 200,
            "Complete onboarding",
            f"Test-mode onboarding for connected account <b>{acct['id']}</b>{email}.",
            f'<form method="post">{problem}'
            f'<input type="hidden" name="link" value="{html.escape(token)}">'
            "<fieldset><legend>Where payouts go</legend>"
            + field("routing_number", "Routing number", stripe_objects.TEST_ROUTING_NUMBER)
            + field("account_number", "Account number", stripe_objects.TEST_ACCOUNT_NUMBER)
            + field("card_number", "Or a debit card number", "", "cc-number")
            + '<p id="payout-hint">Test bank account: routing 110000000, account 000123456789. '
            "Test debit cards: 4000 0566 5566 5556 (Visa), 5200 8282 8282 8210 "
            "(Mastercard).</p></fieldset>"
            '<button type="submit">Complete onboarding</button></form>',
        )

    @staticmethod
    def _payout_destination(acct: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        """The external account the onboarding form gives (ValueError says what is wrong)."""
        currency = acct["default_currency"]
        typed_card = stripe_objects.digits(form.get("card_number", ""))
        if typed_card:
            magic = stripe_objects.card_for_number(typed_card)
            if magic is None:
                raise ValueError("Your card number is invalid: use a test debit card number.")
            card = stripe_objects.TEST_CARDS[magic]
            if card.funding != "debit":
                raise ValueError(
                    "This card doesn't appear to be a debit card: payouts go only to debit cards."
                )
            return stripe_objects.external_card(account_id=acct["id"], card=card, currency=currency)
        routing = stripe_objects.digits(form.get("routing_number", ""))
        number = stripe_objects.digits(form.get("account_number", ""))
        routing = routing or stripe_objects.TEST_ROUTING_NUMBER
        number = number or stripe_objects.TEST_ACCOUNT_NUMBER
        if not re.fullmatch(r"\d{9}", routing):
            raise ValueError("Routing number must have 9 digits.")
        if not re.fullmatch(r"\d{4,17}", number):
            raise ValueError("Account number must have 4 to 17 digits.")
        return stripe_objects.external_bank_account(
            account_id=acct["id"],
            country=acct["country"],
            currency=currency,
            routing_number=routing,
            account_number=number,
            holder_type=acct["business_type"] or "individual",
        )

    def _set_external_account(
        self, acct: dict[str, Any], new: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """An Express account pays out to one destination per currency: the one its holder
        gave last (giving the same one again changes nothing). Returns Stripe's events."""
        listed = acct["external_accounts"]["data"]
        if any(
            x["fingerprint"] == new["fingerprint"] and x["currency"] == new["currency"]
            for x in listed
        ):
            return []
        replaced = [x for x in listed if x["currency"] == new["currency"]]
        acct["external_accounts"]["data"] = [new] + [x for x in listed if x not in replaced]
        return [self._emit(None, "account.external_account.created", new)] + [
            self._emit(None, "account.external_account.deleted", x) for x in replaced
        ]

    def _external_account(self, acct_id: str, ext_id: str) -> dict[str, Any]:
        listed = self._get("account", acct_id, "account")["external_accounts"]["data"]
        found = next((x for x in listed if x["id"] == ext_id), None)
        if found is None:
            raise no_such("external account", ext_id, "id")
        return found

    @route(
        "GET",
        "/v1/accounts/{id}/external_accounts",
        "list:external_account",
        LIST_PARAMS + " object",
    )
    def list_external_accounts(self, ctx: Ctx, p: Params, acct_id: str) -> dict[str, Any]:
        kind = p.string("object", choices=("bank_account", "card"))
        listed = self._get("account", acct_id, "account")["external_accounts"]["data"]
        items = [x for x in listed if kind is None or x["object"] == kind]
        url = f"/v1/accounts/{acct_id}/external_accounts"
        return self._paged(items, p, url, "external account")

    @route("GET", "/v1/accounts/{id}/external_accounts/{id}", "external_account")
    def retrieve_external_account(
        self, ctx: Ctx, p: Params, acct_id: str, ext_id: str
    ) -> dict[str, Any]:
        return self._render(self._external_account(acct_id, ext_id), p.expand())

    # --- Checkout in setup mode: saving a card on a hosted page ------------------------------

    @route(
        "POST",
        "/v1/checkout/sessions",
        "checkout.session",
        "mode customer success_url cancel_url currency payment_method_types "
        "allowed_payment_method_types metadata client_reference_id setup_intent_data",
    )
    def create_checkout_session(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        mode = p.string("mode", required=True, choices=("payment", "setup", "subscription"))
        if mode != "setup":
            raise invalid(
                "This local server supports only Checkout Sessions with mode=setup.", "mode"
            )
        chosen = [n for n in ("allowed_payment_method_types", "payment_method_types") if p.has(n)]
        if len(chosen) > 1:
            raise invalid(
                f"You may only specify one of these parameters: {', '.join(chosen)}.",
                code="parameters_exclusive",
            )
        dynamic = not self._lists_types(p, ctx.api_version)
        if dynamic and not p.has("currency"):
            raise invalid(
                "`currency` is required in setup mode when `allowed_payment_method_types` is "
                "not given.",
                "currency",
                "parameter_missing",
            )
        currency = p.currency() if p.has("currency") else None
        success_url = _url(p, "success_url", required=True)
        cancel_url = _url(p, "cancel_url")
        intent_data = Params(
            p.mapping("setup_intent_data") or {}, frozenset({"description", "metadata"})
        )
        metadata = stripe_objects.apply_metadata({}, p.metadata())
        customer_id = p.string("customer")
        if customer_id:
            self._get("customer", customer_id, "customer")
        cs = stripe_objects.checkout_session(
            base_url=ctx.base_url,
            mode=mode,
            customer_id=customer_id,
            currency=currency,
            dynamic=dynamic,
            success_url=str(success_url),
            cancel_url=cancel_url,
            metadata=metadata,
            client_reference_id=p.string("client_reference_id"),
            lifetime=CHECKOUT_TTL,
        )
        cs["_setup_intent_data"] = {
            "description": intent_data.string("description"),
            "metadata": stripe_objects.apply_metadata({}, intent_data.metadata()),
        }
        return self._render(self.store.put(cs), p.expand())

    @route("GET", "/v1/checkout/sessions/{id}", "checkout.session")
    def retrieve_checkout_session(self, ctx: Ctx, p: Params, cs_id: str) -> dict[str, Any]:
        cs = self._get("checkout.session", cs_id)
        self._expire_if_due(ctx, cs)
        return self._render(cs, p.expand())

    @route("GET", "/v1/setup_intents/{id}", "setup_intent")
    def retrieve_setup_intent(self, ctx: Ctx, p: Params, seti_id: str) -> dict[str, Any]:
        return self._render(self._get("setup_intent", seti_id), p.expand())

    def _expire_if_due(self, ctx: Ctx | None, cs: dict[str, Any]) -> dict[str, Any] | None:
        """An open session past its `expires_at` expires (with Stripe's event), when next seen."""
        if cs["status"] != "open" or cs["expires_at"] > stripe_objects.now():
            return None
        cs.update(status="expired", url=None)
        return self._emit(ctx, "checkout.session.expired", cs)

    def checkout(self, cs_id: str, card_number: str | None) -> Response:
        """The hosted Checkout page: GET shows it (`card_number` None), POST saves the card."""
        with self.lock:
            cs = self.store.objects("checkout.session").get(cs_id)
            if cs is None:
                return _page(404, "Checkout not found", "There is no such Checkout Session.")
            expired = self._expire_if_due(None, cs)
            if expired:
                self.store.save()
                self._send_events([expired])
            done = str(cs["success_url"]).replace("{CHECKOUT_SESSION_ID}", cs_id)
            if cs["status"] == "complete":
                if card_number is not None:  # submitted twice: the card is saved already
                    return RedirectResponse(done, status_code=303)
                saved = "This Checkout Session is complete: the card is saved."
                return _page(404, "Checkout complete", saved)
            if cs["status"] == "expired":
                back = cs["cancel_url"]
                more = f' <a href="{html.escape(back)}">Go back</a>.' if back else ""
                return _page(404, "Checkout expired", "This Checkout Session has expired." + more)
            if card_number is None:
                return self._checkout_form(cs, "4242 4242 4242 4242", None)
            magic = stripe_objects.card_for_number(card_number)
            if magic is None:
                error = (
                    "Your card number is incomplete."
                    if not card_number.strip()
                    else "Your card number is invalid: use a test card number."
                )
                return self._checkout_form(cs, card_number, error)
            events = self._complete_checkout(cs, magic)
            self.store.save()
            self._send_events(events)
        return RedirectResponse(done, status_code=303)

    def _checkout_form(
        self, cs: dict[str, Any], card_number: str, error: str | None
    ) -> HTMLResponse:
        cus = self.store.objects("customer").get(cs["customer"] or "")
        who = f" for <b>{html.escape(cus['email'] or cus['id'])}</b>" if cus else ""
        described, problem, invalid_attr = "card-hint", "", ""
        if error:
            described = "card-error card-hint"
            problem = f'<p id="card-error" role="alert"><b>{html.escape(error)}</b></p>'
            invalid_attr = ' aria-invalid="true"'
        cancel = cs["cancel_url"]
        back = f'<p><a href="{html.escape(cancel)}">Cancel and go back</a></p>' if cancel else ""
        return _page(
            400 if error else 200,
            "Save a card",
            f"Test-mode Checkout: save a card{who} for later payments.",
            f'<form method="post">{problem}'
            '<p><label for="cardNumber">Card number</label><br>'
            '<input id="cardNumber" name="cardNumber" type="text" inputmode="numeric" '
            f'autocomplete="cc-number" required aria-describedby="{described}"{invalid_attr} '
            f'value="{html.escape(card_number)}"></p>'
            '<p id="card-hint">Test cards: 4242 4242 4242 4242 (succeeds), '
            "4000 0000 0000 0002 (saved, then declined when charged).</p>"
            f'<button type="submit">Save card</button></form>{back}',
        )

    def _complete_checkout(self, cs: dict[str, Any], magic: str) -> list[dict[str, Any]]:
        """Save the card as Checkout does: a PaymentMethod (attached to the session's customer)
        and a succeeded SetupIntent; the session completes. Returns the events to send."""
        customer_id = cs["customer"]
        pm = self._materialize_pm(stripe_objects.TEST_CARDS[magic], customer_id)
        intent_data = cs["_setup_intent_data"]
        seti = stripe_objects.setup_intent(
            customer_id=customer_id,
            payment_method_id=pm["id"],
            dynamic=cs["payment_method_configuration_details"] is not None,
            description=intent_data["description"],
            metadata=intent_data["metadata"],
        )
        self.store.put(seti)
        cus = self.store.objects("customer").get(customer_id or "")
        cs.update(
            status="complete",
            setup_intent=seti["id"],
            url=None,
            customer_details=stripe_objects.customer_details(cus),
        )
        return [
            self._emit(None, "setup_intent.succeeded", seti),
            self._emit(None, "checkout.session.completed", cs),
        ]

    # --- transfers and refunds ----------------------------------------------------------------

    @route(
        "POST",
        "/v1/transfers",
        "transfer",
        "amount currency destination transfer_group source_transaction metadata "
        "description source_type",
    )
    def create_transfer(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        amount = p.integer("amount", required=True, minimum=1)
        currency = p.currency()
        destination = p.string("destination")
        if not destination:
            raise missing("destination")
        assert amount is not None  # required=True
        source_id = p.string("source_transaction")
        p.string("source_type", choices=("card", "bank_account", "fpx"))
        description, transfer_group = p.string("description"), p.string("transfer_group")
        metadata = stripe_objects.apply_metadata({}, p.metadata())
        acct = self.store.objects("account").get(destination)
        if acct is None:
            raise no_such("destination", destination, "destination")
        if acct["capabilities"].get("transfers") != "active":
            raise StripeError(
                400,
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
            )
        if source_id:
            source = self._get("charge", source_id, "source_transaction")
            if source["status"] != "succeeded":
                raise invalid(f"The charge {source_id} has not succeeded.", "source_transaction")
            if source["currency"] != currency:
                raise StripeError(
                    400,
                    f"The currency of source_transaction's balance transaction "
                    f"({source['currency']}) must be the same as the transfer currency "
                    f"({currency}).",
                    param="currency",
                )
            spent = sum(
                t["amount"]
                for t in self.store.objects("transfer").values()
                if t["source_transaction"] == source_id
            )
            remaining = source["amount"] - source["amount_refunded"] - spent
            if amount > remaining:
                raise StripeError(
                    400,
                    f"Insufficient funds in source_transaction {source_id}: the transfer amount "
                    f"({money(amount, currency)}) is greater than what remains of that "
                    f"charge ({money(remaining, currency)}).",
                    code="balance_insufficient",
                    param="amount",
                )
        elif amount > self._available().get(currency, 0):
            raise StripeError(
                400,
                "You have insufficient available funds in your Stripe account. Try adding funds "
                "directly to your available balance by creating Charges using the "
                "4000000000000077 test card. See: https://stripe.com/docs/testing"
                "#available-balance",
                code="balance_insufficient",
            )
        tr = stripe_objects.transfer(
            amount=amount,
            currency=currency,
            destination=destination,
            source_transaction=source_id,
            description=description,
            metadata=metadata,
            transfer_group=transfer_group,
        )
        self._book(tr, -amount, "transfer")
        self._emit(ctx, "transfer.created", tr)
        return self._render(tr, p.expand())

    list_route("/v1/transfers", "transfer", "transfer_group destination")

    @route("GET", "/v1/transfers/{id}", "transfer")
    def retrieve_transfer(self, ctx: Ctx, p: Params, tr_id: str) -> dict[str, Any]:
        return self._render(self._get("transfer", tr_id), p.expand())

    @route("POST", "/v1/refunds", "refund", "payment_intent charge amount reason metadata")
    def create_refund(self, ctx: Ctx, p: Params) -> dict[str, Any]:
        pi_id, ch_id = p.string("payment_intent"), p.string("charge")
        if pi_id and ch_id:
            raise invalid(
                "You may only specify one of these parameters: charge, payment_intent.",
                code="parameters_exclusive",
            )
        if not pi_id and not ch_id:
            raise invalid(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
            )
        amount = p.integer("amount", minimum=1)
        reason = p.string("reason", choices=REFUND_REASONS)
        metadata = stripe_objects.apply_metadata({}, p.metadata())
        if pi_id:
            pi = self._get("payment_intent", pi_id, "payment_intent")
            if pi["status"] != "succeeded":
                raise StripeError(
                    400,
                    f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            ch_id = pi["latest_charge"]
        ch = self._get("charge", ch_id, "charge")
        if ch["status"] != "succeeded":
            raise StripeError(
                400,
                f"Charge {ch_id} has not succeeded and cannot be refunded.",
                code="charge_not_refundable",
                param="charge",
            )
        remaining = ch["amount"] - ch["amount_refunded"]
        if remaining <= 0:
            raise StripeError(
                400, f"Charge {ch_id} has already been refunded.", code="charge_already_refunded"
            )
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise StripeError(
                400,
                f"Refund amount ({money(amount, ch['currency'])}) is greater than unrefunded "
                f"amount on charge ({money(remaining, ch['currency'])})",
                param="amount",
            )
        re_obj = stripe_objects.refund(
            amount=amount, charge_obj=ch, reason=reason, metadata=metadata
        )
        self._book(re_obj, -amount, "refund")
        previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
        ch["refunds"]["data"].insert(0, self._render(re_obj))
        self._emit(ctx, "charge.refunded", ch, previous)
        return self._render(re_obj, p.expand())

    list_route("/v1/refunds", "refund", "payment_intent charge")

    @route("GET", "/v1/refunds/{id}", "refund")
    def retrieve_refund(self, ctx: Ctx, p: Params, re_id: str) -> dict[str, Any]:
        return self._render(self._get("refund", re_id), p.expand())

    # --- events --------------------------------------------------------------------------------

    list_route("/v1/events", "event", "type")

    @route("GET", "/v1/events/{id}", "event")
    def retrieve_event(self, ctx: Ctx, p: Params, evt_id: str) -> dict[str, Any]:
        return self._render(self._get("event", evt_id), p.expand())

    # --- test controls -------------------------------------------------------------------------

    def add_failure(self, spec: dict[str, Any]) -> dict[str, Any]:
        prefix, status = spec.get("path_prefix"), spec.get("status", 500)
        count, method = spec.get("count", 1), spec.get("method")
        # Narrows a rule to one caller's requests (e.g. one internship's), for parallel tests.
        key_prefix = spec.get("idempotency_key_prefix")
        if key_prefix is not None and not isinstance(key_prefix, str):
            raise ValueError("idempotency_key_prefix must be a string")
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ValueError("path_prefix must be a path starting with '/'")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        if method is not None and method not in ("GET", "POST"):
            raise ValueError("method must be GET, POST or absent")
        rule = {
            "path_prefix": prefix,
            "status": status,
            "count": count,
            "method": method,
            "idempotency_key_prefix": key_prefix,
        }
        with self.lock:
            self.failures.append(rule)
        return rule

    def reset(self) -> None:
        with self.lock:
            self.failures.clear()
            self.store.data = Store.empty()
            self.store.save()
            if self.webhooks:
                self.webhooks.clear()

    def receipt(self, charge_id: str) -> Response:
        with self.lock:
            ch = self.store.objects("charge").get(charge_id)
            if ch is None:
                return _page(404, "Receipt not found", "There is no such charge.")
            paid = money(ch["amount"], ch["currency"])
            refunded = money(ch["amount_refunded"], ch["currency"])
        return _page(200, "Receipt", f"{charge_id}: {paid} {ch['status']}, {refunded} refunded.")


def _page(status: int, title: str, body_html: str, extra: str = "") -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)} · local Stripe</title></head>"
        "<body style='font-family:sans-serif;max-width:32rem;margin:3rem auto'>"
        f"<h1>{html.escape(title)}</h1><p>{body_html}</p>{extra}</body></html>",
        status_code=status,
    )


def create_app(
    data_path: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    public_url: str | None = None,
) -> Starlette:
    """The ASGI app; webhooks are sent only when `webhook_url` is given. The pages it links to
    for a browser (onboarding, Checkout, the Express dashboard, receipts) are at `public_url` when
    given, else at the address the API request came to (which, from another container, a browser
    can't open)."""
    stripe = LocalStripe(data_path, webhook_url, webhook_secret)
    public = public_url.rstrip("/") if public_url else None

    async def api(request: Request) -> Response:
        req = ApiRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=request.url.query,
            body=(await request.body()).decode("utf-8", errors="replace"),
            base_url=public or str(request.base_url).rstrip("/"),
        )
        result = await run_in_threadpool(stripe.handle, req)
        return Response(
            result.body, result.status, headers=result.headers, media_type="application/json"
        )

    async def onboarding(request: Request) -> Response:
        token = request.query_params.get("link", "")
        form = None
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", errors="replace")
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            token = token or form.get("link", "")
        return await run_in_threadpool(
            stripe.onboarding,
            request.path_params["account"],
            token,
            form,
            request.client.host if request.client else "127.0.0.1",
            request.headers.get("user-agent", ""),
        )

    async def express(request: Request) -> Response:
        token = request.query_params.get("link", "")
        account = request.path_params["account"]
        return await run_in_threadpool(stripe.express_dashboard, account, token)

    async def failures(request: Request) -> Response:
        if request.method == "POST":
            try:
                spec = json.loads(await request.body())
                rule = stripe.add_failure(spec if isinstance(spec, dict) else {})
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(rule)
        if request.method == "DELETE":
            with stripe.lock:
                stripe.failures.clear()
        with stripe.lock:
            return JSONResponse({"data": list(stripe.failures)})

    async def reset(request: Request) -> Response:
        await run_in_threadpool(stripe.reset)
        return JSONResponse({"reset": True})

    async def requests_log(request: Request) -> Response:
        prefix = request.query_params.get("path_prefix", "")
        with stripe.lock:
            entries = [e for e in stripe.store.data["requests"] if e["path"].startswith(prefix)]
            return JSONResponse({"data": copy.deepcopy(entries)})

    async def receipt(request: Request) -> Response:
        return await run_in_threadpool(stripe.receipt, request.path_params["charge"])

    async def checkout(request: Request) -> Response:
        card_number = None
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", errors="replace")
            card_number = parse_qs(body).get("cardNumber", [""])[0]
        return await run_in_threadpool(stripe.checkout, request.path_params["session"], card_number)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        stripe.close()

    app = Starlette(
        routes=[
            Route("/v1/{rest:path}", api, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
            Route("/connect/onboarding/{account}", onboarding, methods=["GET", "POST"]),
            Route("/express/{account}", express),
            Route("/c/pay/{session}", checkout, methods=["GET", "POST"]),
            Route("/receipts/payment/{charge}", receipt),
            Route("/_test/failures", failures, methods=["GET", "POST", "DELETE"]),
            Route("/_test/reset", reset, methods=["POST"]),
            Route("/_test/requests", requests_log),
        ],
        lifespan=lifespan,
    )
    app.state.stripe = stripe
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Local Stripe-compatible API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--data", default=None, help="JSON state file (default: in memory)")
    parser.add_argument(
        "--webhook-url",
        default=os.environ.get("STRIPE_WEBHOOK_URL", DEFAULT_WEBHOOK_URL),
        help="where events are POSTed; empty disables webhooks",
    )
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("STRIPE_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET),
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="where a browser reaches this server (its onboarding, Checkout and receipt links); "
        "default: the address each API request came to",
    )
    args = parser.parse_args(argv)
    app = create_app(args.data, args.webhook_url or None, args.webhook_secret, args.public_url)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
