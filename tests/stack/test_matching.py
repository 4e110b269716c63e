"""Ranked applicants for employers and recommended postings for launchers, over the API, with
records read from the database projection."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.orm import sessionmaker

from core.accounts import founder_of
from core.db import Employer, Internship, Launcher, TimelineEvent
from core.matching import Record, fit, records
from dev.harness import api_sign_up
from tests.conftest import OPS_TOKEN, Api, eventually, unique_email
from tests.stack.test_api import ACCEPT, act, auth, employer, error_of, ok, post

NOW = datetime(2026, 1, 1, tzinfo=UTC)
Json = dict[str, Any]


def items(response: httpx.Response) -> list[Json]:
    assert response.status_code == 200, response.text
    found: list[Json] = response.json()
    return found


async def sign_up(api: Api, *skills: str) -> dict[str, str]:
    assert api.inbox is not None
    body = {"name": f"Lin {skills}", "email": unique_email("lin"), "skills": list(skills)}
    return await api_sign_up(api.http, api.inbox, "launcher", body)


async def test_applicants_are_ranked_by_fit_with_reasons(api: Api) -> None:
    emp = await employer(api)
    iid = (await post(api, emp, skills=["excel", "research"]))["id"]
    partial, full, none = (
        await sign_up(api, "research"),
        await sign_up(api, "Excel", "research", "sql"),
        await sign_up(api, "drawing"),
    )
    for lnc in (partial, none, full):
        await act(api, lnc, iid, "applications", {"pitch": "Me", **ACCEPT})
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
    rating; open ones don't count yet. (Its overdue row predates `timeline_events.launcher_id`:
    it counts against the internship's launcher.)"""
    with sessions.begin() as db:
        employer_id, launcher_id = add_employer(db), add_launcher(db)
        add_internship(db, employer_id, launcher_id, rating=5)
        add_internship(db, employer_id, launcher_id, events=(("overdue", None),))
        add_internship(db, employer_id, launcher_id, stage="in_progress")
    with sessions() as db:
        assert records(db, [launcher_id]) == {
            launcher_id: Record(completed=2, on_time=1, ratings=(5,))
        }


def add_employer(db: Any) -> str:
    employer_id = uuid.uuid4().hex[:16]
    employer = Employer(
        id=employer_id,
        name="Ada",
        email=unique_email("ada"),
        company="Acme",
        stripe_customer_id="cus_x",
        stripe_payment_method="pm_x",
    )
    db.add(employer)
    db.flush()
    db.add(founder_of(employer))
    return employer_id


def add_launcher(db: Any) -> str:
    launcher_id = uuid.uuid4().hex[:16]
    db.add(
        Launcher(
            id=launcher_id,
            name="Lin",
            email=unique_email("lin"),
            skills=[],
            stripe_account_id=f"acct_{launcher_id}",
        )
    )
    db.flush()
    return launcher_id


def add_internship(
    db: Any,
    employer_id: str,
    launcher_id: str | None,
    stage: str = "completed",
    rating: int | None = None,
    events: tuple[tuple[str, str | None], ...] = (),
) -> str:
    """An internship as the projection has it, with timeline events (event, launcher then)."""
    iid = uuid.uuid4().hex[:16]
    db.add(
        Internship(
            id=iid,
            employer_id=employer_id,
            launcher_id=launcher_id,
            title=f"Small task {iid[:4]}",
            description="d",
            company="Acme",
            category="hr",
            stage=stage,
            estimated_hours=5,
            fee_cents=10000,
            currency="usd",
            duration_days=7,
            posted_at=NOW,
            updated_at=NOW,
            employer_rating=rating,
        )
    )
    db.flush()
    if stage == "completed":
        events = (*events, ("completed", launcher_id))
    for seq, (event, then) in enumerate(events, start=1):
        db.add(
            TimelineEvent(
                internship_id=iid,
                seq=seq,
                at=NOW,
                stage=stage,
                event=event,
                actor_role="system",
                actor_id="system",
                launcher_id=then,
            )
        )
    return iid


async def test_each_employer_counts_once_in_ratings_and_portfolios(
    api: Api, sessions: sessionmaker
) -> None:
    """One employer rating three tiny internships 5 weighs as much as another rating one 2:
    3.5, not 4.25."""
    with sessions.begin() as db:
        friend, stranger, lnc = add_employer(db), add_employer(db), add_launcher(db)
        for rating in (5, 5, 5):
            add_internship(db, friend, lnc, rating=rating)
        add_internship(db, stranger, lnc, rating=2)
    with sessions() as db:
        record = records(db, [lnc])[lnc]
    assert record == Record(completed=4, on_time=4, ratings=(5.0, 2.0))
    assert fit([], [], record).reasons[-1] == "rated 3.5 of 5 by 2 employers"
    emp = await employer(api)
    portfolio = await ok(
        await api.http.get(f"/v1/launchers/{lnc}/portfolio", headers=auth(emp["api_token"]))
    )
    assert len(portfolio["completed"]) == 4 and portfolio["average_rating"] == 3.5


def test_overdue_counts_against_the_launcher_who_was_late(sessions: sessionmaker) -> None:
    """The launcher recorded with an `overdue` event is the late one, also if they left or it
    was cancelled; whoever completed it after them is on time. Events recorded before the
    timeline kept the launcher count against the internship's."""
    with sessions.begin() as db:
        employer_id = add_employer(db)
        late, next_one, legacy, busy = (add_launcher(db) for _ in range(4))
        # Left after going overdue; the next one completed it.
        add_internship(db, employer_id, next_one, rating=4, events=(("overdue", late),))
        # Cancelled by the overdue timer while still theirs.
        add_internship(db, employer_id, late, "refunded", events=(("overdue", late),))
        add_internship(db, employer_id, legacy, events=(("overdue", None),))
        add_internship(db, employer_id, busy, "in_progress", events=(("overdue", busy),))
    with sessions() as db:
        found = records(db, [late, next_one, legacy, busy])
    assert found == {
        late: Record(unfinished_late=2),
        next_one: Record(completed=1, on_time=1, ratings=(4.0,)),
        legacy: Record(completed=1, on_time=0),
    }
    reasons = fit([], [], found[late]).reasons
    assert reasons[1:] == ["on time in 0 of 2 (2 not completed after going overdue)"]
    assert fit([], [], found[next_one]).reasons[1] == "on time in 1 of 1 completed"
    assert fit([], [], Record()).reasons[1] == "no completed internships yet"  # busy: not yet
