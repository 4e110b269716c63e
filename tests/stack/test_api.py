"""The v1 API over real HTTP, against a real worker on the time-skipping server."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy.orm import sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.accounts import create_employer, issue_token
from core.codec import data_converter
from core.internship import Role
from core.settings import Settings
from core.stripe_api import stripe_client
from dev.harness import api_sign_up, free_port
from tests.conftest import (
    BIN,
    OPS_TOKEN,
    WEBHOOK_SECRET,
    Api,
    Inbox,
    World,
    eventually,
    unique_email,
)

Json = dict[str, Any]
POSTING = {
    "title": "Competitor pricing analysis",
    "description": "Compare five competitors' pricing pages and summarise in a deck.",
    "category": "marketing",
    "skills": ["Research", "Excel"],
    "estimated_hours": 10,
    "fee_cents": 40000,
    "currency": "usd",
    "duration_days": 7,
}


# Applying and kicking off accept the internship's terms (`terms` of the internship).
ACCEPT = {"accept_terms": True}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


OPS = auth(OPS_TOKEN)


async def ok(response: httpx.Response, status: int = 200) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    return body


def error_of(response: httpx.Response, status: int) -> Json:
    """Every error has the one shape, with a message that says what to fix."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    error: Json = body["error"]
    return error


async def employer(api: Api, card: str = "pm_card_visa") -> Json:
    assert api.inbox is not None
    body = {"name": "Ada Lovelace", "email": unique_email("ada"), "company": "Acme"}
    return await api_sign_up(api.http, api.inbox, "employer", body, card=card)


async def launcher(api: Api, onboard: bool = True) -> Json:
    assert api.inbox is not None
    asked = {"name": "Lin Chen", "email": unique_email("lin"), "skills": ["research"]}
    account = await api_sign_up(api.http, api.inbox, "launcher", asked)
    if onboard:
        async with httpx.AsyncClient() as browser:
            page = await browser.get(account["onboarding_url"])
            assert page.status_code == 200 and "<form" in page.text
            done = await browser.post(account["onboarding_url"])
            assert done.status_code in (200, 303)
    return account


async def post(api: Api, emp: Json, **changes: Any) -> Json:
    return await ok(
        await api.http.post(
            "/v1/internships", json={**POSTING, **changes}, headers=auth(emp["api_token"])
        ),
        201,
    )


async def act(
    api: Api,
    who: Json | dict[str, str],
    iid: str,
    action: str,
    body: Json | None = None,
    status: int = 200,
) -> Json:
    headers = who if "Authorization" in who else auth(who["api_token"])
    response = await api.http.post(
        f"/v1/internships/{iid}/{action}", json=body or {}, headers=headers
    )
    return await ok(response, status) if status < 400 else error_of(response, status)


async def until(api: Api, who: Json, iid: str, check: Callable[[Json], bool]) -> Json:
    """Poll the internship until `check` holds (for work the workflow finishes on its own)."""

    async def probe() -> Json | None:
        body = await ok(
            await api.http.get(f"/v1/internships/{iid}", headers=auth(who["api_token"]))
        )
        return body if check(body) else None

    return await eventually(probe)


async def until_stage(api: Api, who: Json, iid: str, stage: str) -> Json:
    return await until(api, who, iid, lambda body: body["stage"] == stage)


async def listed(api: Api, headers: dict[str, str], count: int, **params: Any) -> list[Json]:
    """The list endpoint once the projection holds at least `count` matching internships."""

    async def probe() -> list[Json]:
        page = await ok(await api.http.get("/v1/internships", params=params, headers=headers))
        items: list[Json] = page["items"]
        return items if len(items) >= count else []

    return await eventually(probe)


async def test_walkthrough_from_sign_up_to_completed(api: Api, inbox: Inbox) -> None:
    emp, lnc = await employer(api), await launcher(api)
    internship = await post(api, emp)
    iid = internship["id"]
    assert internship["stage"] == "posted" and internship["skills"] == ["excel", "research"]

    # Lists read the projection, which the workflow writes within moments of each event.
    async def listed_as_open() -> bool:
        page = await ok(
            await api.http.get(
                "/v1/internships",
                params={"stage": "posted", "limit": 100},
                headers=auth(lnc["api_token"]),
            )
        )
        return iid in [i["id"] for i in page["items"]]

    assert await eventually(listed_as_open)

    # The terms the posting answered with are the ones the workflow holds both sides to: each
    # accepts them by the hash they read (the launcher from the list's detail, the employer
    # from the posting's answer).
    read = await ok(await api.http.get(f"/v1/internships/{iid}", headers=auth(lnc["api_token"])))
    assert read["terms"] == internship["terms"]
    accepted = {"accept_terms": True, "terms_hash": internship["terms"]["hash"]}
    applied = await act(api, lnc, iid, "applications", {"pitch": "I love spreadsheets", **accepted})
    assert [a["launcher_id"] for a in applied["applicants"]] == [lnc["id"]]
    assert (await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]}))["stage"] == "matched"
    started = await act(api, emp, iid, "kickoff", accepted)
    assert started["stage"] == "in_progress" and started["due_at"]
    assert started["payment"]["charged_cents"] == 40000
    review = await act(
        api, lnc, iid, "submissions", {"url": "https://docs.test/deck", "note": "Deck attached"}
    )
    assert review["stage"] == "in_review"
    approved = await act(api, emp, iid, "review", {"decision": "approve", "feedback": "Great"})
    assert approved["stage"] in ("approved", "paid")
    paid = await until_stage(api, emp, iid, "paid")
    assert paid["payment"]["paid_to_launcher_cents"] == 36000

    mine = await act(api, emp, iid, "feedback", {"rating": 5, "comment": "Thorough"})
    assert mine["ratings"] == {"employer": {"rating": 5, "comment": "Thorough"}}
    theirs = await ok(await api.http.get(f"/v1/internships/{iid}", headers=auth(lnc["api_token"])))
    assert theirs["ratings"] == {}  # hidden until both are in
    done = await act(api, lnc, iid, "feedback", {"rating": 4, "comment": "Clear brief"})
    assert done["stage"] == "completed" and set(done["ratings"]) == {"employer", "launcher"}
    assert [e["event"] for e in done["timeline"]][-1] == "completed"

    portfolio = await ok(
        await api.http.get(f"/v1/launchers/{lnc['id']}/portfolio", headers=auth(emp["api_token"]))
    )
    assert [(p["internship_id"], p["rating"]) for p in portfolio["completed"]] == [(iid, 5)]
    assert portfolio["average_rating"] == 5
    await inbox.wait_for(iid, "completed", 2)


async def test_authentication_and_ownership(api: Api) -> None:
    emp, other, lnc, outsider = (
        await employer(api),
        await employer(api),
        await launcher(api),
        await launcher(api),
    )
    iid = (await post(api, emp))["id"]
    assert error_of(await api.http.get(f"/v1/internships/{iid}"), 401)["code"] == "unauthorized"
    error_of(await api.http.get("/v1/internships", headers=auth("nope")), 401)
    # Someone else's internship does not exist for an employer; unknown ids are 404 too.
    error_of(await api.http.get(f"/v1/internships/{iid}", headers=auth(other["api_token"])), 404)
    await act(api, other, iid, "selection", {"launcher_id": lnc["id"]}, status=404)
    error_of(await api.http.get("/v1/internships/doesnotexist", headers=OPS), 404)
    await act(api, OPS, "doesnotexist", "kickoff", ACCEPT, status=404)
    # Wrong role: 403.
    assert (await act(api, lnc, iid, "selection", {"launcher_id": lnc["id"]}, status=403))[
        "code"
    ] == "forbidden"
    await act(api, emp, iid, "applications", {"pitch": "me", **ACCEPT}, status=403)
    error_of(
        await api.http.post("/v1/internships", json=POSTING, headers=auth(lnc["api_token"])), 403
    )
    # Wrong stage: 409 with the stage and what is allowed now.
    conflict = await act(api, emp, iid, "kickoff", ACCEPT, status=409)
    assert conflict["details"] == {
        "stage": "posted",
        "allowed_actions": ["selection", "cancellation", "invitations"],
    }
    await act(api, lnc, iid, "applications", {"pitch": "Pick me", **ACCEPT})
    again = await act(
        api, lnc, iid, "applications", {"pitch": "Pick me again", **ACCEPT}, status=409
    )
    assert again["details"]["stage"] == "posted"
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    # Once matched, launchers who did not apply no longer see it.
    error_of(await api.http.get(f"/v1/internships/{iid}", headers=auth(outsider["api_token"])), 404)
    # After it finishes, any transition is a 409 naming the final stage.
    await act(api, emp, iid, "cancellation", {"reason": "Budget cut"})
    gone = await act(api, emp, iid, "cancellation", {"reason": "Again"}, status=409)
    assert gone["details"]["stage"] == "cancelled"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/internships", {**POSTING, "fee_cents": 19999}, "fee_cents"),
        ("/v1/internships", {**POSTING, "estimated_hours": 41}, "estimated_hours"),
        ("/v1/internships", {**POSTING, "duration_days": 6}, "duration_days"),
        ("/v1/internships", {**POSTING, "category": "astrology"}, "category"),
        ("/v1/internships", {**POSTING, "title": "   "}, "title"),
        ("/v1/internships", {**POSTING, "surprise": 1}, "surprise"),
        ("/v1/internships", {k: v for k, v in POSTING.items() if k != "title"}, "title"),
    ],
)
async def test_invalid_postings_are_422_and_start_nothing(
    api: Api, path: str, body: Json, field: str
) -> None:
    emp = await employer(api)
    error = error_of(await api.http.post(path, json=body, headers=auth(emp["api_token"])), 422)
    assert field in error["message"]
    # A valid posting afterwards is the employer's only one: the refused one started nothing.
    valid = await post(api, emp)
    listed_now = await listed(api, OPS, 1, employer=emp["id"])
    assert [i["id"] for i in listed_now] == [valid["id"]]


async def test_bad_input_on_transitions_is_422_and_changes_nothing(api: Api) -> None:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "", **ACCEPT}, status=422)
    await act(api, lnc, iid, "applications", {"pitch": "x" * 2001, **ACCEPT}, status=422)
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]}, status=422)  # no application
    response = await api.http.post(
        f"/v1/internships/{iid}/applications",
        content=b"{not json",
        headers={**auth(lnc["api_token"]), "Content-Type": "application/json"},
    )
    error_of(response, 422)
    await act(api, lnc, iid, "applications", {"pitch": "Now properly", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(api, emp, iid, "kickoff", ACCEPT)
    await act(api, lnc, iid, "submissions", {"url": "not a url"}, status=422)
    await act(api, emp, iid, "extension", {"due_at": "2020-01-01T00:00:00"}, status=422)
    await act(api, emp, iid, "extension", {"due_at": "2020-01-01T00:00:00Z"}, status=422)
    await act(api, emp, iid, "extension", {"due_at": "9999-12-31T23:59:59-23:59"}, status=422)
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=auth(emp["api_token"])))
    assert detail["stage"] == "in_progress" and detail["submissions"] == []
    later = datetime.fromisoformat(detail["due_at"]) + timedelta(days=3)
    moved = await act(api, emp, iid, "extension", {"due_at": later.isoformat()})
    assert datetime.fromisoformat(moved["due_at"]) == later
    await act(api, emp, iid, "review", {"decision": "maybe"}, status=422)
    await act(api, emp, iid, "feedback", {"rating": 9}, status=422)


async def test_list_filters_and_cursor_pagination(api: Api) -> None:
    emp = await employer(api)
    ids = [
        (await post(api, emp, category=c, skills=[s]))["id"]
        for c, s in [("finance", "excel"), ("finance", "sql"), ("hr", "excel")]
    ]
    await listed(api, OPS, 3, employer=emp["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"employer": emp["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await ok(await api.http.get("/v1/internships", params=params, headers=OPS))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once
    finance = await ok(
        await api.http.get(
            "/v1/internships", headers=OPS, params={"employer": emp["id"], "category": "finance"}
        )
    )
    assert {i["id"] for i in finance["items"]} == set(ids[:2])
    excel = await ok(
        await api.http.get(
            "/v1/internships", headers=OPS, params={"employer": emp["id"], "skill": "Excel"}
        )
    )
    assert {i["id"] for i in excel["items"]} == {ids[0], ids[2]}
    for cursor in ("garbage", "2024-01-01T00:00:00|abc", "0001-01-01T00:00:00+05:00|abc"):
        token = (
            cursor if cursor == "garbage" else base64.urlsafe_b64encode(cursor.encode()).decode()
        )
        error_of(await api.http.get("/v1/internships", params={"cursor": token}, headers=OPS), 422)
    error_of(await api.http.get("/v1/internships", params={"stage": "sleeping"}, headers=OPS), 422)


async def test_declined_card_is_402_and_ops_hear_of_it(api: Api, inbox: Inbox) -> None:
    emp, lnc = await employer(api, card="pm_card_chargeDeclined"), await launcher(api)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "Hello", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    declined = await act(api, emp, iid, "kickoff", ACCEPT, status=402)
    assert declined["code"] == "payment_declined"
    assert declined["details"] == {
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
    }
    # Retrying with the same card is the same decline: ops were told once.
    await act(api, emp, iid, "kickoff", ACCEPT, status=402)
    detail = await ok(await api.http.get(f"/v1/internships/{iid}", headers=OPS))
    assert (detail["stage"], detail["escalation_level"]) == ("matched", 2)
    assert [e["event"] for e in detail["timeline"]].count("escalated") == 1
    assert await inbox.wait_for(iid, "escalation")
    # Another card declined for another reason is news for ops.
    await ok(
        await api.http.put(
            "/v1/employers/me/payment_method",
            headers=auth(emp["api_token"]),
            json={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
        )
    )
    poor = await act(api, emp, iid, "kickoff", ACCEPT, status=402)
    assert poor["details"]["decline_code"] == "insufficient_funds"
    assert "insufficient funds" in poor["message"]
    assert await inbox.wait_for(iid, "escalation", 2)
    # The employer replaces the card and kicks off again: charged once, with the new card.
    error_of(
        await api.http.put(
            "/v1/employers/me/payment_method",
            headers=auth(emp["api_token"]),
            json={"payment_method": "pm_card_nonsense"},
        ),
        422,
    )
    card = await ok(
        await api.http.put(
            "/v1/employers/me/payment_method",
            headers=auth(emp["api_token"]),
            json={"payment_method": "pm_card_visa"},
        )
    )
    assert card["payment_method"].startswith("pm_") and card["payment_method"] != "pm_card_visa"
    started = await act(api, emp, iid, "kickoff", ACCEPT)
    assert (started["stage"], started["payment"]["charged_cents"]) == ("in_progress", 40000)
    assert started["escalation_level"] == 0


async def test_sign_up_rejects_unknown_payment_method(api: Api) -> None:
    response = await api.http.post(
        "/v1/employers",
        json={
            "name": "Bo",
            "email": "bo@x.example.com",
            "company": "X",
            "payment_method": "pm_card_unknown",
        },
    )
    assert "payment_method" in error_of(response, 422)["message"]
    error_of(
        await api.http.post(
            "/v1/employers",
            json={
                "name": "Bo",
                "email": "not-an-email",
                "company": "X",
                "payment_method": "pm_card_visa",
            },
        ),
        422,
    )


async def test_payout_waits_for_onboarding_then_webhook_pays(api: Api) -> None:
    emp, lnc = await employer(api), await launcher(api, onboard=False)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "Hello", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(api, emp, iid, "kickoff", ACCEPT)
    await act(api, lnc, iid, "submissions", {"url": "https://docs.test/x"})
    await act(api, emp, iid, "review", {"decision": "approve"})
    waiting = await until_stage(api, emp, iid, "approved")
    assert waiting["payment"]["paid_to_launcher_cents"] == 0
    # Stripe's hosted onboarding completes; its signed webhook reaches the API, which signals.
    async with httpx.AsyncClient() as browser:
        fresh = await ok(
            await api.http.post("/v1/launchers/me/onboarding_link", headers=auth(lnc["api_token"]))
        )
        assert (await browser.post(fresh["onboarding_url"])).status_code in (200, 303)
    paid = await until_stage(api, emp, iid, "paid")
    assert paid["payment"]["paid_to_launcher_cents"] == 36000


def signed(payload: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    ts = int(time.time())
    sig = stripe.WebhookSignature._compute_signature(f"{ts}.{payload.decode()}", secret)
    return {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json"}


async def test_webhook_checks_signatures_and_ignores_duplicates(api: Api) -> None:
    event = json.dumps(
        {
            "id": "evt_test_dup",
            "object": "event",
            "type": "charge.succeeded",
            "data": {"object": {"id": "ch_1", "object": "charge"}},
        }
    ).encode()
    bad = await api.http.post(
        "/v1/stripe/webhook", content=event, headers=signed(event, "whsec_wrong")
    )
    assert error_of(bad, 400)["code"] == "bad_signature"
    error_of(await api.http.post("/v1/stripe/webhook", content=event), 400)
    # Signed, but not an event we can act on.
    for hollow in ({"object": "event", "type": "account.updated"}, {"id": "evt_x", "type": "x"}):
        body = json.dumps(hollow).encode()
        response = await api.http.post("/v1/stripe/webhook", content=body, headers=signed(body))
        assert error_of(response, 400)["code"] == "bad_event"
    first = await ok(
        await api.http.post("/v1/stripe/webhook", content=event, headers=signed(event))
    )
    again = await ok(
        await api.http.post("/v1/stripe/webhook", content=event, headers=signed(event))
    )
    assert (first["status"], again["status"]) == ("ok", "duplicate")


async def test_health_metrics_and_openapi(api: Api) -> None:
    assert await ok(await api.http.get("/healthz")) == {"status": "ok"}
    health = await ok(await api.http.get("/healthz", headers=OPS))
    assert health == {"status": "ok", "database": "ok", "temporal": "ok"}
    error_of(await api.http.get("/metrics"), 401)
    emp = await employer(api)
    error_of(await api.http.get("/metrics", headers=auth(emp["api_token"])), 403)
    metrics = await api.http.get("/metrics", headers=OPS)
    assert "api_requests_total" in metrics.text
    spec = await ok(await api.http.get("/openapi.json"))
    for path in (
        "/v1/employers",
        "/v1/launchers",
        "/v1/internships",
        "/v1/internships/{internship_id}/review",
        "/v1/stripe/webhook",
        "/v1/launchers/{launcher_id}/portfolio",
    ):
        assert path in spec["paths"], path
    assert (await api.http.get("/docs")).status_code == 200


async def test_codec_endpoint_decrypts_history_for_ops_only(api: Api, world: World) -> None:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "secret pitch 4711", **ACCEPT})
    history = await world.env.client.get_workflow_handle(f"internship-{iid}").fetch_history()
    accepted = [
        e.workflow_execution_update_accepted_event_attributes
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    raw = [p for a in accepted for p in a.accepted_request.input.args.payloads]
    assert raw and all(b"4711" not in p.data for p in raw)  # encrypted at rest in Temporal
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in raw
        ]
    }
    # The Temporal UI calls from its own origin; the browser's preflight must pass.
    preflight = await api.http.options(
        "/codec/decode",
        headers={
            "Origin": "http://localhost:8233",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
    error_of(await api.http.post("/codec/decode", json=body), 401)
    error_of(await api.http.post("/codec/decode", json=body, headers=auth(lnc["api_token"])), 403)
    tampered = {"payloads": [{**body["payloads"][0], "data": base64.b64encode(b"x" * 40).decode()}]}
    error_of(await api.http.post("/codec/decode", json=tampered, headers=OPS), 422)
    decoded = await ok(await api.http.post("/codec/decode", json=body, headers=OPS))
    plain = b"".join(base64.b64decode(p["data"]) for p in decoded["payloads"])
    assert b"secret pitch 4711" in plain


async def test_every_transition_without_token_is_401(api: Api) -> None:
    for action in (
        "applications",
        "selection",
        "kickoff",
        "submissions",
        "review",
        "extension",
        "cancellation",
        "withdrawal",
        "dispute",
        "resolution",
        "feedback",
    ):
        error_of(await api.http.post(f"/v1/internships/x/{action}", json={}), 401)


async def test_dispute_resolution_through_the_api(api: Api) -> None:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "Hello", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(api, emp, iid, "kickoff", ACCEPT)
    disputed = await act(api, emp, iid, "dispute", {"reason": "No contact for a week"})
    assert disputed["dispute"]["opened_by"] == "employer"
    assert disputed["allowed_actions"] == []  # ops settle it
    as_ops = await ok(await api.http.get(f"/v1/internships/{iid}", headers=OPS))
    assert as_ops["allowed_actions"] == ["cancellation", "resolution"]
    await act(api, emp, iid, "resolution", {"outcome": "refund"}, status=403)
    await act(
        api, OPS, iid, "resolution", {"outcome": "split", "launcher_percent": 100}, status=422
    )
    done = await act(
        api,
        OPS,
        iid,
        "resolution",
        {"outcome": "split", "launcher_percent": 25, "note": "Partial work"},
    )
    # Resolved, with the launcher's share still owed: settling until it is paid.
    assert done["stage"] == "settling" and done["allowed_actions"] == []
    assert done["dispute"]["outcome"] == "split"
    assert done["payment"]["refunded_cents"] == 30000
    # The launcher's share follows from the workflow on its own.
    paid = await until_stage(api, emp, iid, "resolved")
    assert paid["payment"]["paid_to_launcher_cents"] == 9000


async def test_temporal_outage_is_503_and_starts_nothing(
    settings: Settings, sessions: sessionmaker
) -> None:
    """Infrastructure down is not the caller's fault, and never an unexplained 500."""
    # A Temporal server that was there when the API started, then went away.
    gone = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter(settings.codec_key),
        dev_server_log_level="error",
    )
    dead = gone.client
    await gone.shutdown()
    local = settings.model_copy(update={"api_port": free_port()})
    ada = create_employer(
        sessions,
        stripe_client(settings),
        name="Ada",
        email=unique_email("ada"),
        company="Acme",
        payment_method="pm_card_visa",
    )
    token = issue_token(sessions, Role.EMPLOYER, ada.id, "test")
    async with Api(create_app(local, temporal=dead), local.api_port) as down:
        assert error_of(
            await down.http.post("/v1/internships", json=POSTING, headers=auth(token)),
            503,
        )["message"]
        health = await down.http.get("/healthz", headers=OPS)
        assert health.status_code == 503 and health.json()["temporal"].startswith("down")
