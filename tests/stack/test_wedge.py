"""Data can't wedge a workflow: a write the database refuses for good escalates to ops and the
lifecycle goes on; a database that is merely down is retried until it is back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from activities.notifications import Templates
from activities.projection import Projection, TransitionRecord
from core.db import Internship, TimelineEvent, make_sessions
from core.internship import Application, Selection, Stage
from tests.conftest import World
from tests.stack.test_lifecycle import emp, lnc, state
from workflows.internship import InternshipWorkflow


@contextmanager
def refusing(sessions: sessionmaker, internship_id: str, event: str) -> Iterator[None]:
    """The database refuses to store one timeline event of one internship (a trigger)."""
    with sessions.begin() as db:
        if db.bind.dialect.name == "postgresql":
            db.execute(
                text(
                    f"""CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN
                    IF NEW.internship_id = '{internship_id}' AND NEW.event = '{event}' THEN
                      RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation';
                    END IF; RETURN NEW; END $$ LANGUAGE plpgsql"""
                )
            )
            db.execute(
                text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON timeline_events "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_one()"
                )
            )
        else:
            db.execute(
                text(
                    f"""CREATE TRIGGER refuse_one BEFORE INSERT ON timeline_events
                    WHEN NEW.internship_id = '{internship_id}' AND NEW.event = '{event}'
                    BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"""
                )
            )
    try:
        yield
    finally:
        with sessions.begin() as db:
            if db.bind.dialect.name == "postgresql":
                db.execute(text("DROP TRIGGER refuse_one ON timeline_events"))
                db.execute(text("DROP FUNCTION refuse_one()"))
            else:
                db.execute(text("DROP TRIGGER refuse_one"))


async def test_a_write_the_database_refuses_escalates_and_the_lifecycle_goes_on(
    world: World,
) -> None:
    employer, launcher = world.employer(), world.launcher()
    posting = world.posting(employer)
    iid = posting.internship_id
    with refusing(world.sessions, iid, "applied"):
        h = await world.start(posting)
        s = await h.execute_update(InternshipWorkflow.apply, Application(lnc(launcher), "Hi"))
        assert (s.stage, s.escalation_level) == (Stage.POSTED, 2)
        [alert] = await world.inbox.wait_for(iid, "escalation")
        body = alert.get_body(("plain",))
        assert body is not None and "refused to record 'applied'" in body.get_content()
    s = await h.execute_update(InternshipWorkflow.select, Selection(emp(employer), launcher.id))
    assert s.stage == Stage.MATCHED
    with world.sessions() as db:
        row = db.get(Internship, iid)
        assert row is not None and row.stage == "matched"  # the next event caught it up
        events = db.scalars(
            select(TimelineEvent.event)
            .where(TimelineEvent.internship_id == iid)
            .order_by(TimelineEvent.seq)
        ).all()
        assert events == ["posted", "selected"]  # only the refused one is missing
    assert [e.event for e in (await state(h)).timeline] == ["posted", "applied", "selected"]


async def test_a_database_that_is_down_is_retried_not_given_up(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Down is not refused: the activity fails as retryable (Temporal retries until it's back)."""
    employer = world.employer()
    h = await world.start(world.posting(employer))
    s = await state(h)
    missing = tmp_path_factory.mktemp("gone") / "no-such-dir" / "app.db"
    down = Projection(make_sessions(f"sqlite:///{missing}"), Templates(), "http://x", "ops@x")
    with pytest.raises(OperationalError):
        await asyncio.to_thread(down.record, TransitionRecord(s, s.timeline[-1], []))
