"""Idempotency-Key on every POST, with Stripe's semantics: a retry is answered, not repeated."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.db import IdempotentRequest
from core.settings import Settings
from dev.harness import Inbox, code_in, free_port
from tests.conftest import OPS_TOKEN, Api
from tests.stack.test_api import (
    ACCEPT,
    POSTING,
    act,
    auth,
    employer,
    error_of,
    launcher,
    listed,
    ok,
    post,
    until_stage,
)
from tests.stack.test_lifecycle import money_calls

Json = dict[str, Any]


def keyed(token: str, key: str) -> dict[str, str]:
    return {**auth(token), "Idempotency-Key": key}


async def matched(api: Api) -> tuple[Json, str]:
    emp, lnc = await employer(api), await launcher(api)
    iid = (await post(api, emp))["id"]
    await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    return emp, iid


def charges(settings: Settings, iid: str) -> int:
    world = type("W", (), {"settings": settings})()  # money_calls reads only the settings
    return len(money_calls(world.settings, "/v1/payment_intents", iid))  # type: ignore[arg-type]


async def test_a_retried_posting_is_answered_again_and_posts_once(api: Api) -> None:
    emp, key = await employer(api), str(uuid.uuid4())
    first = await api.http.post(
        "/v1/internships", json=POSTING, headers=keyed(emp["api_token"], key)
    )
    again = await api.http.post(
        "/v1/internships", json=POSTING, headers=keyed(emp["api_token"], key)
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await api.http.post(
        "/v1/internships",
        json={**POSTING, "fee_cents": 50000},
        headers=keyed(emp["api_token"], key),
    )
    assert error_of(other, 422)["code"] == "idempotency_key_reused"
    listed_now = await listed(api, auth(emp["api_token"]), 1)
    assert [i["id"] for i in listed_now] == [first.json()["id"]]
    # Another caller's key is their own.
    theirs = await employer(api)
    mine_too = await api.http.post(
        "/v1/internships", json=POSTING, headers=keyed(theirs["api_token"], key)
    )
    assert mine_too.status_code == 201 and mine_too.json()["id"] != first.json()["id"]


async def test_a_retried_kickoff_charges_once(api: Api, settings: Settings) -> None:
    emp, iid = await matched(api)
    key = str(uuid.uuid4())
    path = f"/v1/internships/{iid}/kickoff"
    first = await api.http.post(path, json=ACCEPT, headers=keyed(emp["api_token"], key))
    again = await api.http.post(path, json=ACCEPT, headers=keyed(emp["api_token"], key))
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert charges(settings, iid) == 1
    # Without the key a repeat is a new request: the kickoff already happened.
    await act(api, emp, iid, "kickoff", ACCEPT, status=409)


async def test_an_answer_lost_with_its_process_is_not_repeated(
    api: Api, settings: Settings, sessions: sessionmaker
) -> None:
    """The key also travels as the Temporal update id and the workflow id: even when the stored
    answer is gone (the API died before keeping it), a retry has no second effect."""
    emp, iid = await matched(api)
    key = str(uuid.uuid4())
    path = f"/v1/internships/{iid}/kickoff"
    first = await ok(await api.http.post(path, json=ACCEPT, headers=keyed(emp["api_token"], key)))
    posting_key = str(uuid.uuid4())
    posted = await api.http.post(
        "/v1/internships", json=POSTING, headers=keyed(emp["api_token"], posting_key)
    )
    with sessions.begin() as db:
        db.execute(delete(IdempotentRequest).where(IdempotentRequest.key.in_([key, posting_key])))
    again = await ok(await api.http.post(path, json=ACCEPT, headers=keyed(emp["api_token"], key)))
    assert (again["stage"], again["payment"]) == (first["stage"], first["payment"])
    assert charges(settings, iid) == 1
    reposted = await api.http.post(
        "/v1/internships", json=POSTING, headers=keyed(emp["api_token"], posting_key)
    )
    assert reposted.status_code == 200 and reposted.json()["id"] == posted.json()["id"]


async def test_a_finished_internship_is_never_run_again_under_its_old_key(
    api: Api, settings: Settings, sessions: sessionmaker, env: WorkflowEnvironment
) -> None:
    """Found by a tester: reposting with the key of a completed internship, once its kept answer
    was no longer found, started a second run that got run one's charge back from Stripe; its
    cancellation refunded run one's charge and the platform paid the launcher out of pocket."""
    emp, lnc = await employer(api), await launcher(api)
    key, token = str(uuid.uuid4()), emp["api_token"]
    first = await ok(
        await api.http.post("/v1/internships", json=POSTING, headers=keyed(token, key)), 201
    )
    iid = first["id"]
    await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT})
    await act(api, emp, iid, "selection", {"launcher_id": lnc["id"]})
    await act(api, emp, iid, "kickoff", ACCEPT)
    await act(api, lnc, iid, "submissions", {"url": "https://docs.test/a", "note": "Done"})
    await act(api, emp, iid, "review", {"decision": "approve"})
    await until_stage(api, emp, iid, "paid")
    await act(api, emp, iid, "feedback", {"rating": 5})
    await act(api, lnc, iid, "feedback", {"rating": 5})
    handle = env.client.get_workflow_handle(f"internship-{iid}")
    run = (await handle.describe()).run_id

    # The same account, its credential written another way: the kept answer is the account's.
    lower = {"Authorization": f"bearer {token}", "Idempotency-Key": key}
    replayed = await api.http.post("/v1/internships", json=POSTING, headers=lower)
    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    # A day later the kept answer is gone: the internship answers as it is now, not anew.
    with sessions.begin() as db:
        db.execute(delete(IdempotentRequest).where(IdempotentRequest.key == key))
    again = await api.http.post("/v1/internships", json=POSTING, headers=lower)
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["stage"]) == (iid, "completed")
    with sessions.begin() as db:
        db.execute(delete(IdempotentRequest).where(IdempotentRequest.key == key))
    other = await api.http.post(
        "/v1/internships", json={**POSTING, "title": "Another"}, headers=keyed(token, key)
    )
    assert error_of(other, 409)["code"] == "idempotency_key_reused"
    description = await handle.describe()
    assert description.run_id == run and description.status is not None
    assert description.status.name == "COMPLETED"
    # Money moved once: one charge, one transfer, no refund.
    assert charges(settings, iid) == 1
    assert len(money_calls(settings, "/v1/transfers", iid)) == 1
    assert money_calls(settings, "/v1/refunds", iid) == []


async def test_the_same_key_at_the_same_time_runs_once(api: Api, settings: Settings) -> None:
    emp, iid = await matched(api)
    key = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(
            api.http.post(
                f"/v1/internships/{iid}/kickoff", json=ACCEPT, headers=keyed(emp["api_token"], key)
            )
            for _ in range(5)
        )
    )
    assert {r.status_code for r in answers} <= {200, 409}
    assert all(
        r.json()["error"]["code"] == "idempotency_conflict" for r in answers if r.status_code == 409
    )
    assert charges(settings, iid) == 1


async def test_tokens_are_never_replayed_and_bad_keys_are_422(api: Api, inbox: Inbox) -> None:
    key = str(uuid.uuid4())
    email = f"lin-{key[:8]}@example.com"
    body = {"name": "Lin", "email": email, "skills": []}
    asked = await api.http.post("/v1/launchers", json=body, headers={"Idempotency-Key": key})
    assert asked.status_code == 202
    exchange = {"code": code_in(await inbox.wait_to(email, "sign_up"))}
    first = await api.http.post("/v1/tokens", json=exchange, headers={"Idempotency-Key": key})
    again = await api.http.post("/v1/tokens", json=exchange, headers={"Idempotency-Key": key})
    # A token is never replayed to whoever repeats a request: the repeat is refused, safely.
    assert first.status_code == 201
    assert error_of(again, 410)["code"] == "code_expired"
    assert first.json()["api_token"] not in again.text
    for bad in ("x" * 256, "with space"):
        error = error_of(
            await api.http.post("/v1/launchers", json=body, headers={"Idempotency-Key": bad}), 422
        )
        assert "Idempotency-Key" in error["message"]
    spec = await ok(await api.http.get("/openapi.json"))
    params = spec["paths"]["/v1/internships/{internship_id}/kickoff"]["post"]["parameters"]
    assert "Idempotency-Key" in [p["name"] for p in params]


async def test_a_server_error_is_not_kept(env: WorkflowEnvironment, settings: Settings) -> None:
    local = settings.model_copy(update={"api_port": free_port()})
    app = create_app(local, temporal=env.client)
    calls = 0

    @app.post("/v1/flaky")
    async def flaky() -> Json:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first time unlucky")
        return {"calls": calls}

    async with Api(app, local.api_port) as served:
        headers = {**auth(OPS_TOKEN), "Idempotency-Key": str(uuid.uuid4())}
        assert (await served.http.post("/v1/flaky", headers=headers)).status_code == 500
        retried = await served.http.post("/v1/flaky", headers=headers)
        assert retried.status_code == 200 and retried.json() == {"calls": 2}
        replayed = await served.http.post("/v1/flaky", headers=headers)
        assert replayed.json() == {"calls": 2} and calls == 2
