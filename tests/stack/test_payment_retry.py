"""A payment Stripe refused for good is visible, and ops retry it from the API.

Real parts throughout: the API over HTTP, the worker on the time-skipping server, the local
Stripe server refusing transfers (an injected 400, stored under its idempotency key like a real
refusal) and the database projection the ops queue lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import sessionmaker

from core.db import Internship
from core.settings import Settings
from tests.conftest import Api, eventually
from tests.stack.test_api import (
    ACCEPT,
    OPS,
    act,
    auth,
    employer,
    error_of,
    launcher,
    ok,
    post,
    until,
)
from tests.stack.test_lifecycle import money_calls

Json = dict[str, Any]
REFUSED = "payout of $360.00 refused by Stripe"


def refuse_transfers(settings: Settings, internship_id: str) -> None:
    """Stripe refuses every transfer of this internship until `stop_refusing`."""
    httpx.post(
        f"{settings.stripe_api_base}/_test/failures",
        json={
            "path_prefix": "/v1/transfers",
            "status": 400,
            "count": 100,
            "idempotency_key_prefix": f"internship-{internship_id}/",
        },
    ).raise_for_status()


def stop_refusing(settings: Settings) -> None:
    httpx.delete(f"{settings.stripe_api_base}/_test/failures").raise_for_status()


@pytest.fixture(autouse=True)
def no_failures_left(settings: Settings) -> Iterator[None]:
    yield
    stop_refusing(settings)


def projected(sessions: sessionmaker, internship_id: str) -> Internship:
    with sessions() as db:
        row = db.get(Internship, internship_id)
        assert row is not None
        return row


async def projection_says(sessions: sessionmaker, internship_id: str, refused: bool) -> None:
    async def probe() -> bool:
        return projected(sessions, internship_id).payment_refused == refused

    await eventually(probe)


async def in_review(api: Api) -> tuple[Json, Json, str]:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "I have done this before", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(api, emp, iid, "kickoff", ACCEPT)
    await act(api, lnc, iid, "submissions", {"url": "https://docs.test/deck", "note": "Deck"})
    return emp, lnc, iid


def retry(api: Api, iid: str, headers: dict[str, str]) -> Any:
    return api.http.post(f"/v1/internships/{iid}/payment-retry", headers=headers)


def events(detail: Json) -> list[tuple[str, str]]:
    return [(e["event"], e["actor_role"]) for e in detail["timeline"]]


async def test_a_refused_payout_is_listed_and_ops_retry_it_from_the_api(
    api: Api, settings: Settings, sessions: sessionmaker
) -> None:
    emp, lnc, iid = await in_review(api)
    refuse_transfers(settings, iid)
    await act(api, emp, iid, "review", {"decision": "approve", "feedback": "Good"})

    # Ops see it: escalated, and the projection (what ops' queue lists) says a payment is refused.
    detail = await until(api, emp, iid, lambda d: d["escalation_level"] == 2)
    assert detail["stage"] == "approved"
    await projection_says(sessions, iid, refused=True)

    # Only ops may retry it.
    for who in (emp, lnc):
        error = error_of(await retry(api, iid, auth(who["api_token"])), 403)
        assert error["code"] == "forbidden"
    error_of(await retry(api, iid, {}), 401)

    # A retry before Stripe's side is fixed is refused again, and listed again.
    detail = await ok(await retry(api, iid, OPS), 202)
    assert detail["id"] == iid and detail["stage"] == "approved"
    refusals = await until(
        api, emp, iid, lambda d: [e for e, _ in events(d)].count("escalated") == 2
    )
    assert ("payment_retry", "ops") in events(refusals)
    await projection_says(sessions, iid, refused=True)
    with sessions() as db:
        row = db.get(Internship, iid)
        assert row is not None and (row.stage, row.escalation_level) == ("approved", 2)

    # Fixed at Stripe: ops retry, the launcher is paid exactly once.
    stop_refusing(settings)
    await ok(await retry(api, iid, OPS), 202)
    paid = await until(api, lnc, iid, lambda d: d["stage"] == "paid")
    assert paid["payment"]["paid_to_launcher_cents"] == 36000
    assert [e for e, _ in events(paid)].count("payment_retry") == 2
    assert len(money_calls(settings, "/v1/transfers", iid)) == 1
    await projection_says(sessions, iid, refused=False)
    row = projected(sessions, iid)
    assert (row.stage, row.paid_cents) == ("paid", 36000)

    # Nothing waits for a retry any more.
    error = error_of(await retry(api, iid, OPS), 409)
    assert (error["code"], error["details"]["stage"]) == ("invalid_stage", "paid")


async def test_a_retry_when_nothing_is_refused_is_409(api: Api, sessions: sessionmaker) -> None:
    _, _, iid = await in_review(api)
    error = error_of(await retry(api, iid, OPS), 409)
    assert error["code"] == "invalid_stage"
    assert error["details"] == {"stage": "in_review", "allowed_actions": ["cancellation"]}
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=OPS))
    assert "payment_retry" not in [e for e, _ in events(detail)]
    assert projected(sessions, iid).payment_refused is False


async def test_a_retry_of_an_unknown_internship_is_404(api: Api) -> None:
    error = error_of(await retry(api, "no-such-internship", OPS), 404)
    assert error["code"] == "not_found"


async def test_the_payment_retry_is_documented(api: Api) -> None:
    doc = await ok(await api.http.get("/openapi.json"))
    operation = doc["paths"]["/v1/internships/{internship_id}/payment-retry"]["post"]
    assert {"202", "401", "403", "404", "409"} <= set(operation["responses"])
