"""Ranked applicants for employers and recommended postings for launchers, over the API, with
records read from the database projection."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import sessionmaker

from core.db import Employer, Internship, Launcher, TimelineEvent
from core.matching import Record, records
from tests.conftest import OPS_TOKEN, Api, eventually, unique_email
from tests.test_api import act, auth, employer, error_of, ok, post

NOW = datetime(2026, 1, 1, tzinfo=UTC)
Json = dict[str, Any]


def items(response: httpx.Response) -> list[Json]:
    assert response.status_code == 200, response.text
    found: list[Json] = response.json()
    return found


async def sign_up(api: Api, *skills: str) -> dict[str, str]:
    body = {"name": f"Lin {skills}", "email": unique_email("lin"), "skills": list(skills)}
    return await ok(await api.http.post("/v1/launchers", json=body), 201)


async def test_applicants_are_ranked_by_fit_with_reasons(api: Api) -> None:
    emp = await employer(api)
    iid = (await post(api, emp, skills=["excel", "research"]))["id"]
    partial, full, none = (
        await sign_up(api, "research"),
        await sign_up(api, "Excel", "research", "sql"),
        await sign_up(api, "drawing"),
    )
    for lnc in (partial, none, full):
        await act(api, lnc, iid, "applications", {"pitch": "Me"})
    await act(api, none, iid, "withdrawal")
    path = f"/v1/internships/{iid}/applicants"
    ranked = items(await api.http.get(path, headers=auth(emp["api_token"])))
    assert [r["launcher_id"] for r in ranked] == [full["id"], partial["id"], none["id"]]
    assert ranked[0]["reasons"][0] == "2 of 2 skills: excel, research"
    assert ranked[0]["score"] > ranked[1]["score"] and ranked[2]["withdrawn"]
    assert items(await api.http.get(path, headers=auth(OPS_TOKEN)))[0]["score"] == 80
    error_of(await api.http.get(path, headers=auth(full["api_token"])), 403)
    other = await employer(api)
    error_of(await api.http.get(path, headers=auth(other["api_token"])), 404)


async def test_launchers_see_the_postings_that_fit_them_first(api: Api) -> None:
    emp = await employer(api)
    tag = uuid.uuid4().hex[:8]  # skills no other test uses, so the ranking is this test's
    fits = (await post(api, emp, skills=[f"a{tag}", f"b{tag}"]))["id"]
    half = (await post(api, emp, skills=[f"a{tag}", "plumbing"]))["id"]
    lnc = await sign_up(api, f"a{tag}", f"b{tag}")

    async def recommended() -> list[Json] | None:
        got = items(
            await api.http.get(
                "/v1/launchers/me/recommendations",
                params={"limit": 50},
                headers=auth(lnc["api_token"]),
            )
        )
        ids = [r["internship"]["id"] for r in got]
        return got if fits in ids and half in ids else None

    got = await eventually(recommended)
    ids = [r["internship"]["id"] for r in got]
    assert ids.index(fits) < ids.index(half)
    assert got[0]["internship"]["id"] == fits and got[0]["score"] == 80
    error_of(
        await api.http.get("/v1/launchers/me/recommendations", headers=auth(emp["api_token"])),
        403,
    )


def test_records_count_on_time_work_and_ratings(sessions: sessionmaker) -> None:
    """Completed internships count; one with an 'overdue' event was late; unrated ones add no
    rating; open ones don't count yet."""
    employer_id, launcher_id = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    ids = [uuid.uuid4().hex[:16] for _ in range(3)]
    with sessions.begin() as db:
        db.add(
            Employer(
                id=employer_id,
                name="Ada",
                email=unique_email("ada"),
                company="Acme",
                token_hash=uuid.uuid4().hex,
                stripe_customer_id="cus_x",
                stripe_payment_method="pm_x",
            )
        )
        db.add(
            Launcher(
                id=launcher_id,
                name="Lin",
                email=unique_email("lin"),
                skills=[],
                token_hash=uuid.uuid4().hex,
                stripe_account_id=f"acct_{launcher_id}",
            )
        )
        db.flush()
        for n, (iid, stage, rating) in enumerate(
            zip(ids, ("completed", "completed", "in_progress"), (5, None, None), strict=True)
        ):
            db.add(
                Internship(
                    id=iid,
                    employer_id=employer_id,
                    launcher_id=launcher_id,
                    title=f"t{n}",
                    description="d",
                    company="Acme",
                    category="hr",
                    stage=stage,
                    estimated_hours=10,
                    fee_cents=40000,
                    currency="usd",
                    duration_days=7,
                    posted_at=NOW,
                    updated_at=NOW,
                    employer_rating=rating,
                )
            )
        db.flush()
        db.add(
            TimelineEvent(
                internship_id=ids[1],
                seq=1,
                at=NOW,
                stage="in_progress",
                event="overdue",
                actor_role="system",
                actor_id="system",
            )
        )
    with sessions() as db:
        assert records(db, [launcher_id]) == {
            launcher_id: Record(completed=2, on_time=1, ratings=(5,))
        }
