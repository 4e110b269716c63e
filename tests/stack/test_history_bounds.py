"""A posting's history grows linearly with its applicants and stays far below Temporal's limit.

Temporal keeps every update's input and result in the workflow's history and terminates a
workflow whose history passes 50 MB. Updates answer with the state as their caller may read
it (`rulebook.as_seen_by`): an applicant's answer holds their own application alone, so each
application adds the same bytes however many came before it; the employer's few answers hold
every application once each; and a posting takes at most `MAX_OPEN_APPLICATIONS` open
applications. Postings with 50, 100 and 200 applicants (pitches of the longest length the API
takes) go through the whole lifecycle (select, kickoff, submit, approve, paid) on the
time-skipping server with the real worker, and their histories are measured as the server
stores them. Run with `-s` to see the measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Replayer

from api.service.workflows import start_internship
from core import errors, rulebook
from core.internship import (
    Actor,
    Application,
    Feedback,
    InternshipState,
    Kickoff,
    Review,
    Role,
    Selection,
    Stage,
    Submission,
    Withdrawal,
)
from tests.conftest import Api, Party, World, eventually
from tests.stack.test_api import ACCEPT
from workflows.internship import InternshipWorkflow

Handle = WorkflowHandle[InternshipWorkflow, InternshipState]

SIZES = (50, 100, 200)
LIMIT = 200  # MAX_OPEN_APPLICATIONS' default
# The longest pitch the API takes (2,000 characters): the worst case per application.
PITCH = ("I have written onboarding guides for three SaaS products; samples on request. " * 26)[
    :2000
]
MB = 1024 * 1024


def emp(p: Party) -> Actor:
    return Actor(Role.EMPLOYER, p.id)


def lnc(p: Party) -> Actor:
    return Actor(Role.LAUNCHER, p.id)


def history_bytes(history: Any) -> int:
    """The history's size as Temporal stores and limits it (its events, serialized)."""
    return History(events=history.events).ByteSize()


async def size(h: Handle) -> int:
    return history_bytes(await h.fetch_history())


@contextlib.asynccontextmanager
async def postings(world: World) -> AsyncIterator[list[Handle]]:
    """Workflows started for this test, outside `world.start`: a 200-applicant history is no
    replay fixture for RECORD_HISTORIES. Each must still replay; those left open are stopped."""
    handles: list[Handle] = []
    try:
        yield handles
    finally:
        replayer = Replayer(
            workflows=[InternshipWorkflow], data_converter=world.env.client.data_converter
        )
        for h in handles:
            await replayer.replay_workflow(await h.fetch_history())
            with contextlib.suppress(RPCError):
                await h.terminate("test finished")


@pytest.mark.slow  # 200 applicants and a lifecycle, a minute: the slow layer
async def test_history_grows_linearly_and_a_full_posting_refuses_politely(
    world: World, api: Api
) -> None:
    assert world.settings.max_open_applications == LIMIT
    employer = world.employer()
    chosen = world.launcher()  # onboarded: the one selected and paid
    others = [world.launcher(onboard=False) for _ in range(LIMIT)]  # others[-1]: the 201st
    applicants = [chosen, *others[: LIMIT - 1]]

    async with postings(world) as handles:

        async def posted_with(n: int) -> tuple[Handle, int]:
            posting = world.posting(employer)
            h = await start_internship(world.env.client, posting, world.settings.task_queue)
            handles.append(h)
            for p in applicants[:n]:
                await h.execute_update(InternshipWorkflow.apply, Application(lnc(p), PITCH))
            return h, await size(h)

        started = await asyncio.gather(*(posted_with(n) for n in SIZES))
        posted = dict(zip(SIZES, started, strict=True))
        full, _ = posted[LIMIT]
        iid = full.id.removeprefix("internship-")
        s = await full.query(InternshipWorkflow.state)
        assert rulebook.open_applications(s) == LIMIT and rulebook.posting_full(s)

        # The 201st is refused, with the reason and where to go instead.
        late = others[-1]
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await full.execute_update(InternshipWorkflow.apply, Application(lnc(late), PITCH))
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == errors.CONFLICT
        assert cause.details[0]["code"] == rulebook.POSTING_FULL
        headers = {"Authorization": f"Bearer {late.token}"}
        answer = await api.http.post(
            f"/v1/internships/{iid}/applications", json={"pitch": PITCH, **ACCEPT}, headers=headers
        )
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "posting_full"
        assert "as many applicants as it takes" in error["message"]
        assert "Try other postings" in error["message"]
        assert error["details"]["max_open_applications"] == LIMIT
        # A withdrawal frees a place: the 201st gets in, and the answer shows the application.
        await full.execute_update(InternshipWorkflow.withdraw, Withdrawal(lnc(applicants[-1])))
        answer = await api.http.post(
            f"/v1/internships/{iid}/applications", json={"pitch": PITCH, **ACCEPT}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        assert detail["stage"] == "posted" and detail["allowed_actions"] == ["withdrawal"]
        assert [a["launcher_id"] for a in detail["applicants"]] == [late.id]
        before = {n: await size(h) for n, (h, _) in posted.items()}

        async def lifecycle(h: Handle) -> int:
            """Select, kick off, submit, approve; the payout follows: the history then."""
            by = emp(employer)
            await h.execute_update(InternshipWorkflow.select, Selection(by, chosen.id))
            await h.execute_update(InternshipWorkflow.kickoff, Kickoff(by))
            work = Submission(lnc(chosen), "https://docs.test/onboarding", "Done")
            await h.execute_update(InternshipWorkflow.submit, work)
            out = await h.execute_update(InternshipWorkflow.review, Review(by, "approve", "Good"))
            assert out.stage in (Stage.APPROVED, Stage.PAID)

            async def paid() -> bool:
                return (await h.query(InternshipWorkflow.state)).stage == Stage.PAID

            await eventually(paid, within=30)
            return await size(h)

        finished = await asyncio.gather(*(lifecycle(posted[n][0]) for n in SIZES))
        after = dict(zip(SIZES, finished, strict=True))

    applied = {n: bytes_ for n, (_, bytes_) in posted.items()}
    per_applicant = {
        "50 -> 100": (applied[100] - applied[50]) / 50,
        "100 -> 200": (applied[200] - applied[100]) / 100,
    }
    tail = {n: after[n] - before[n] for n in SIZES}
    print("\nhistory bytes (2,000-character pitches):")
    for n in SIZES:
        print(f"  {n:>3} applicants: {applied[n]:>9,} after applying, {after[n]:>9,} once paid")
    for span, b in per_applicant.items():
        print(f"  bytes per applicant {span}: {b:,.0f}")
    print(f"  select to paid adds: {tail}")

    # Far below Temporal's 50 MB, and each applicant costs the same as the one before.
    assert after[LIMIT] < 4 * MB
    assert per_applicant["100 -> 200"] <= 1.05 * per_applicant["50 -> 100"]
    assert per_applicant["50 -> 100"] <= 1.05 * per_applicant["100 -> 200"]
    # The pitch twice (the request, and the applicant's answer: their own application alone)
    # and a few events' framing.
    assert per_applicant["100 -> 200"] < 8 * 1024
    # The rest of the lifecycle grows linearly too: the employer's few answers carry every
    # application (what they read), once each, never the square of them.
    tail_per_applicant = [
        (tail[100] - tail[50]) / 50,
        (tail[200] - tail[100]) / 100,
    ]
    assert max(tail_per_applicant) <= 1.05 * min(tail_per_applicant)


async def test_a_full_posting_takes_the_next_applicant_once_one_withdraws(world: World) -> None:
    """The limit as the workflow applies it, on a posting that takes two: recorded as a replay
    fixture (RECORD_HISTORIES=1), so the handler's own check of it keeps replaying."""
    employer = world.employer()
    first, second, third = world.launcher(onboard=False), world.launcher(), world.launcher()
    posting = world.posting(employer)
    posting = replace(posting, policy=replace(posting.policy, max_open_applications=2))
    h = await world.start(posting)
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(first), "First"))
    out = await h.execute_update(InternshipWorkflow.apply, Application(lnc(second), "Second"))
    # Each applicant's answer holds their own application alone.
    assert out.stage == Stage.POSTED and [a.launcher_id for a in out.applicants] == [second.id]
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await h.execute_update(InternshipWorkflow.apply, Application(lnc(third), "Third"))
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == errors.CONFLICT
    assert cause.details[0] == {
        "stage": "posted",
        "allowed_actions": [],
        "max_open_applications": 2,
        "code": rulebook.POSTING_FULL,
    }
    assert "(2 open applications)" in cause.message
    await h.execute_update(InternshipWorkflow.withdraw, Withdrawal(lnc(first)))
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(third), "Third"))
    s = await h.query(InternshipWorkflow.state)
    assert [(a.launcher_id, a.withdrawn) for a in s.applicants] == [
        (first.id, True),
        (second.id, False),
        (third.id, False),
    ]
    # A withdrawn launcher can't come back, full or not.
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await h.execute_update(InternshipWorkflow.apply, Application(lnc(first), "Again"))
    assert "already applied" in str(again.value.cause)

    by = emp(employer)
    await h.execute_update(InternshipWorkflow.select, Selection(by, third.id))
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(by))
    work = Submission(lnc(third), "https://docs.test/onboarding", "Done")
    out = await h.execute_update(InternshipWorkflow.submit, work)
    assert out.stage == Stage.IN_REVIEW and out.money.charged_cents == posting.fee_cents
    await h.execute_update(InternshipWorkflow.review, Review(by, "approve", "Good"))

    async def paid() -> bool:
        return (await h.query(InternshipWorkflow.state)).stage == Stage.PAID

    await eventually(paid, within=30)
    await h.execute_update(InternshipWorkflow.feedback, Feedback(by, 5, "Clear"))
    out = await h.execute_update(InternshipWorkflow.feedback, Feedback(lnc(third), 5, "Kind"))
    assert out.stage == Stage.COMPLETED
    s = await h.result()
    assert s.stage == Stage.COMPLETED and len(s.timeline) >= len(out.timeline)
