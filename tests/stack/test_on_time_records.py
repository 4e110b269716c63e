"""On-time records belong to launchers: overdue work counts against the launcher who was late,
also after they withdrew, and whoever takes the internship over starts clean. On the
time-skipping test server (its own, since it skips days), with the real worker and projection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from core.db import TimelineEvent
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
from core.matching import Record, fit, records
from tests.conftest import Party, World, eventually, own_clock
from workflows.internship import InternshipWorkflow

env, worker = own_clock()

DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def lnc(p: Party) -> Actor:
    return Actor(Role.LAUNCHER, p.id)


async def state(h: WorkflowHandle[InternshipWorkflow, Any]) -> InternshipState:
    return await h.query(InternshipWorkflow.state)


async def test_the_late_launcher_carries_the_overdue_and_the_next_one_starts_clean(
    world: World,
) -> None:
    employer, late, prompt = world.employer(), world.launcher(), world.launcher()
    by_employer = Actor(Role.EMPLOYER, employer.id)
    h = await world.start(world.posting(employer))
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(late), "I write well"))
    await h.execute_update(InternshipWorkflow.select, Selection(by_employer, late.id))
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(by_employer))
    await world.skip(7 * DAY + HOUR)  # the 7-day due date passes: overdue
    assert (await state(h)).overdue
    await h.execute_update(InternshipWorkflow.withdraw, Withdrawal(lnc(late)))

    # The next launcher delivers the same day and completes it.
    await h.execute_update(InternshipWorkflow.apply, Application(lnc(prompt), "On it"))
    await h.execute_update(InternshipWorkflow.select, Selection(by_employer, prompt.id))
    await h.execute_update(InternshipWorkflow.kickoff, Kickoff(by_employer))
    work = Submission(lnc(prompt), "https://docs.test/article", "Done")
    await h.execute_update(InternshipWorkflow.submit, work)
    await h.execute_update(InternshipWorkflow.review, Review(by_employer, "approve", "Great"))

    async def paid() -> bool:
        return (await state(h)).stage == Stage.PAID

    await eventually(paid)
    await h.execute_update(InternshipWorkflow.feedback, Feedback(by_employer, 5, "Quick"))
    await h.execute_update(InternshipWorkflow.feedback, Feedback(lnc(prompt), 5, "Clear"))
    assert (await state(h)).stage == Stage.COMPLETED

    iid = h.id.removeprefix("internship-")

    async def projected() -> dict[str, Record] | None:
        with world.sessions() as db:
            events = db.query(TimelineEvent).filter_by(internship_id=iid, event="overdue").all()
            found = records(db, [late.id, prompt.id])
        assert [e.launcher_id for e in events] in ([], [late.id])
        return found if prompt.id in found else None

    found = await eventually(projected)
    assert found[late.id] == Record(unfinished_late=1)
    assert found[prompt.id] == Record(completed=1, on_time=1, ratings=(5.0,))
    skills = ["writing"]
    assert fit(skills, skills, found[late.id]).reasons[1] == (
        "on time in 0 of 1 (1 not completed after going overdue)"
    )
    assert fit(skills, skills, found[prompt.id]).reasons[1:] == [
        "on time in 1 of 1 completed",
        "rated 5.0 of 5 by 1 employer",
    ]
    assert fit(skills, skills, found[prompt.id]).score > fit(skills, skills, found[late.id]).score
