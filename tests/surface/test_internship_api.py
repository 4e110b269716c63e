"""The JSON API over the application layer: each endpoint asks the workflow for what it names,
answers with the caller's view, and turns a refusal into the status and message it promises."""

from __future__ import annotations

from dataclasses import replace

from api import schemas
from core import errors
from core.internship import Kickoff, Role, Stage
from core.terms import terms_in
from tests.surface.conftest import OPS_TOKEN, Surface

DETAIL_FIELDS = set(schemas.InternshipDetail.model_fields)
ACCEPT = {"accept_terms": True}  # applying and kicking off accept the internship's terms
POSTING = {
    "title": "Survey of 20 pet shops",
    "description": "Call and summarise.",
    "category": "marketing",
    "skills": ["research"],
    "estimated_hours": 10,
    "fee_cents": 40000,
    "currency": "usd",
    "duration_days": 14,
}


async def test_the_kickoff_endpoint_runs_the_kickoff_update_once_per_key(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.MATCHED, launcher=lee)
    iid = state.posting.internship_id
    surface.workflows.then[iid] = replace(state, stage=Stage.IN_PROGRESS)
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        key = {"Idempotency-Key": "k1"}
        first = await http.post(f"/v1/internships/{iid}/kickoff", json=ACCEPT, headers=key)
        again = await http.post(f"/v1/internships/{iid}/kickoff", json=ACCEPT, headers=key)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["stage"] == "in_progress"
    # The answer is the InternshipDetail contract, nothing the page alone needs.
    assert set(first.json()) == DETAIL_FIELDS
    [asked] = surface.workflows.updates(iid)
    assert asked.what == "kickoff"
    assert asked.request == Kickoff(asked.request.by, terms_in(state).hash)
    assert asked.request.by.id == employer.id
    assert asked.update_id == f"employer:{employer.id}:k1"


async def test_an_employer_without_a_card_is_told_before_the_workflow_is_asked(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(card=False), surface.launcher()
    iid = surface.internship(employer, Stage.MATCHED, launcher=lee).posting.internship_id
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        refused = await http.post(f"/v1/internships/{iid}/kickoff", json=ACCEPT)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "no_card"
    assert "Add a card" in refused.json()["error"]["message"]
    assert surface.workflows.updates(iid) == []


async def test_a_refusal_keeps_its_status_message_and_what_is_possible_now(
    surface: Surface,
) -> None:
    employer, lee = surface.employer(), surface.launcher()
    iid = surface.internship(employer, Stage.IN_PROGRESS, launcher=lee).posting.internship_id
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        early = await http.post(
            f"/v1/internships/{iid}/review", json={"decision": "approve", "feedback": ""}
        )
    assert early.status_code == 409
    error = early.json()["error"]
    assert error["code"] == "invalid_stage"
    assert error["details"]["stage"] == "in_progress"
    assert "extension" in error["details"]["allowed_actions"]
    assert surface.workflows.updates(iid) == []


async def test_each_kind_of_refusal_has_its_status() -> None:
    from api.errors import refusal_error

    statuses = {
        kind: refusal_error(kind, "no", {}).status
        for kind in (
            errors.NOT_FOUND,
            errors.FORBIDDEN,
            errors.CONFLICT,
            errors.INVALID,
            errors.PAYMENT_DECLINED,
            errors.PAYMENT_UNAVAILABLE,
        )
    }
    assert statuses == {
        errors.NOT_FOUND: 404,
        errors.FORBIDDEN: 403,
        errors.CONFLICT: 409,
        errors.INVALID: 422,
        errors.PAYMENT_DECLINED: 402,
        errors.PAYMENT_UNAVAILABLE: 503,
    }
    named = refusal_error(errors.CONFLICT, "full", {"code": "posting_full", "max": 2})
    assert (named.status, named.code, named.details) == (409, "posting_full", {"max": 2})


async def test_a_finished_internship_says_nothing_more_can_happen(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    state = surface.internship(employer, Stage.COMPLETED, launcher=lee)
    iid = state.posting.internship_id
    surface.workflows.finished.add(iid)
    async with surface.client(OPS_TOKEN) as http:
        late = await http.post(f"/v1/internships/{iid}/cancellation", json={"reason": "late"})
    assert late.status_code == 409
    assert late.json()["error"]["message"] == (
        "the internship is completed; nothing more can happen to it"
    )


async def test_each_viewer_reads_what_the_rulebook_lets_them(surface: Surface) -> None:
    employer, ann, bob = surface.employer(), surface.launcher("Ann"), surface.launcher("Bob")
    iid = surface.internship(employer, applicants=[ann, bob]).posting.internship_id
    stranger = surface.employer()
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        owner = (await http.get(f"/v1/internships/{iid}")).json()
    async with surface.client(surface.token(Role.LAUNCHER, ann.id)) as http:
        applicant = (await http.get(f"/v1/internships/{iid}")).json()
    async with surface.client(surface.token(Role.EMPLOYER, stranger.id)) as http:
        unseen = await http.get(f"/v1/internships/{iid}")
    assert {a["launcher_id"] for a in owner["applicants"]} == {ann.id, bob.id}
    assert owner["allowed_actions"] == ["selection", "cancellation", "invitations"]
    assert owner["payment"] == {
        "charged_cents": 0,
        "paid_to_launcher_cents": 0,
        "refunded_cents": 0,
    }
    # An applicant sees their own application alone, and nothing of the work or money.
    assert [a["launcher_id"] for a in applicant["applicants"]] == [ann.id]
    assert applicant["payment"] is None and applicant["timeline"] == []
    assert applicant["allowed_actions"] == ["withdrawal"]
    assert unseen.status_code == 404


async def test_posting_starts_one_workflow_per_key(surface: Surface) -> None:
    employer = surface.employer()
    body = POSTING
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        created = await http.post("/v1/internships", json=body, headers={"Idempotency-Key": "p"})
        cheap = await http.post(
            "/v1/internships", json=body | {"fee_cents": 100}, headers={"Idempotency-Key": "q"}
        )
    assert created.status_code == 201, created.text
    assert created.json()["stage"] == "posted"
    assert [a.what for a in surface.workflows.asked] == ["start"]
    assert cheap.status_code == 422
    assert cheap.json()["error"]["details"] == {"field": "fee_cents", "minimum_cents": 20000}


async def test_the_list_pages_through_what_the_caller_may_see(surface: Surface) -> None:
    employer, other = surface.employer(), surface.employer()
    mine = [surface.internship(employer, Stage.MATCHED).posting.internship_id for _ in range(3)]
    surface.internship(other, Stage.MATCHED)  # not theirs: never listed
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        first = (await http.get("/v1/internships", params={"limit": 2})).json()
        rest = (
            await http.get("/v1/internships", params={"limit": 2, "cursor": first["next_cursor"]})
        ).json()
        made_up = await http.get("/v1/internships", params={"cursor": "bm90LWEtY3Vyc29y"})
    listed = [i["id"] for i in first["items"] + rest["items"]]
    assert sorted(listed) == sorted(mine) and len(listed) == 3
    assert rest["next_cursor"] is None
    assert made_up.status_code == 422
    assert made_up.json()["error"]["details"] == {"field": "cursor"}


async def test_only_ops_retry_a_refused_payment_and_only_while_one_waits(surface: Surface) -> None:
    employer, lee = surface.employer(), surface.launcher()
    refused = surface.internship(
        employer, Stage.APPROVED, launcher=lee, payment_refused="the account is closed"
    ).posting.internship_id
    paid = surface.internship(employer, Stage.PAID, launcher=lee).posting.internship_id
    async with surface.client(surface.token(Role.EMPLOYER, employer.id)) as http:
        not_ops = await http.post(f"/v1/internships/{refused}/payment-retry")
    async with surface.client(OPS_TOKEN) as http:
        retried = await http.post(f"/v1/internships/{refused}/payment-retry")
        nothing = await http.post(f"/v1/internships/{paid}/payment-retry")
    assert not_ops.status_code == 403
    assert retried.status_code == 202, retried.text
    assert [a.what for a in surface.workflows.updates(refused)] == ["retry_payment"]
    assert nothing.status_code == 409
    assert nothing.json()["error"]["message"] == (
        "No refused payment waits for a retry: the internship is paid"
    )
