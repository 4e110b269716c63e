"""Receipts, credit notes and statements on the real database: numbered per organisation without
gaps or repeats under concurrent issuers (SQLite file, or Postgres with DATABASE_URL), and issued
once per money event by the real lifecycle, even when the projection records an event again."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from activities.notifications import Templates
from activities.projection import Projection, TransitionRecord
from core.db import (
    CREDIT_NOTE,
    RECEIPT,
    Document,
    DocumentCounter,
    Employer,
    Internship,
    OutboxEmail,
    make_sessions,
)
from core.documents import issue
from core.internship import Cancellation, Stage
from core.settings import Settings
from tests.conftest import World, eventually
from tests.stack.test_exactly_once import plain_text
from tests.stack.test_lifecycle import emp, in_progress, reaches, state
from workflows.internship import InternshipWorkflow

NOW = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def db_sessions(sessions: sessionmaker, settings: Settings) -> Iterator[sessionmaker]:
    """The suite's migrated database, with a connection for each of twenty issuers at once."""
    many = make_sessions(settings.database_url, pool_size=25, max_overflow=5)
    yield many
    many.kw["bind"].dispose()


def organisation(sessions: sessionmaker) -> tuple[Employer, str]:
    """A new organisation with one internship (documents name both)."""
    eid, iid = f"emp_{uuid.uuid4().hex[:12]}", f"int_{uuid.uuid4().hex[:12]}"
    with sessions.begin() as db:
        employer = Employer(
            id=eid,
            name="Maya Chen",
            email=f"{eid}@example.com",
            company="Northwind Labs",
            stripe_customer_id="cus_x",
            billing_name="Northwind Labs Ltd",
        )
        db.add(employer)
        db.flush()
        db.add(
            Internship(
                id=iid,
                employer_id=eid,
                title="Launch blog post",
                description="d",
                company="Northwind Labs",
                category="marketing",
                stage="in_progress",
                estimated_hours=10,
                fee_cents=40000,
                currency="usd",
                duration_days=14,
                posted_at=NOW,
                updated_at=NOW,
            )
        )
    return employer, iid


def issue_one(sessions: sessionmaker, employer: Employer, iid: str, stripe_id: str) -> int:
    with sessions.begin() as db:
        doc = issue(
            db,
            kind=RECEIPT,
            employer=employer,
            internship_id=iid,
            internship_title="Launch blog post",
            launcher=None,
            stripe_id=stripe_id,
            amount_cents=40000,
            currency="usd",
            at=NOW,
        )
        return doc.number


def test_twenty_concurrent_charges_get_twenty_consecutive_numbers(
    db_sessions: sessionmaker,
) -> None:
    employer, iid = organisation(db_sessions)
    other, other_iid = organisation(db_sessions)
    start = threading.Barrier(20)

    def charge(i: int) -> int:
        start.wait()  # all twenty ask at once, each in its own session and transaction
        return issue_one(db_sessions, employer, iid, f"pi_{uuid.uuid4().hex}")

    with ThreadPoolExecutor(20) as pool:
        numbers = list(pool.map(charge, range(20)))
    assert sorted(numbers) == list(range(1, 21))
    # Another organisation's sequence is its own.
    assert issue_one(db_sessions, other, other_iid, f"pi_{uuid.uuid4().hex}") == 1
    with db_sessions() as db:
        stored = db.scalars(select(Document.number).where(Document.employer_id == employer.id))
        assert sorted(stored) == list(range(1, 21))
        assert db.get(DocumentCounter, employer.id).last_number == 20  # type: ignore[union-attr]


def test_a_document_rolled_back_gives_its_number_back(db_sessions: sessionmaker) -> None:
    employer, iid = organisation(db_sessions)
    assert issue_one(db_sessions, employer, iid, "pi_first_" + uuid.uuid4().hex) == 1
    with pytest.raises(RuntimeError), db_sessions.begin() as db:
        issue(
            db,
            kind=RECEIPT,
            employer=employer,
            internship_id=iid,
            internship_title="t",
            launcher=None,
            stripe_id="pi_lost_" + uuid.uuid4().hex,
            amount_cents=1,
            currency="usd",
            at=NOW,
        )
        raise RuntimeError("the projection failed after numbering")
    assert issue_one(db_sessions, employer, iid, "pi_next_" + uuid.uuid4().hex) == 2


async def test_kickoff_and_cancellation_issue_one_receipt_and_one_credit_note(
    world: World,
) -> None:
    employer, launcher = world.employer(), world.launcher()
    h = await in_progress(world, employer, launcher)
    s = await state(h)
    iid = s.posting.internship_id

    def documents() -> list[Document]:
        with world.sessions() as db:
            return list(
                db.scalars(
                    select(Document).where(Document.internship_id == iid).order_by(Document.id)
                )
            )

    async def receipt_issued() -> bool:
        return len(documents()) == 1

    await eventually(receipt_issued)
    # The kickoff recorded again, as a retried projection activity would.
    kickoff = next(e for e in s.timeline if e.event == "kickoff")
    projection = Projection(
        world.sessions, Templates(), world.settings.public_base_url, world.settings.ops_email
    )
    await asyncio.to_thread(projection.record, TransitionRecord(s, kickoff, []))
    [receipt] = documents()
    assert (receipt.kind, receipt.amount_cents, receipt.stripe_id) == (
        RECEIPT,
        40000,
        s.money.payment_intent_id,
    )
    assert receipt.launcher_name and receipt.billing_email
    kickoff_mail = await world.inbox.wait_for(iid, "kickoff", 2)  # launcher, employer
    link = f"{world.settings.public_base_url}/documents/{receipt.id}"
    assert any(link in plain_text(m) for m in kickoff_mail)

    await h.execute_update(InternshipWorkflow.cancel, Cancellation(emp(employer), "Budget cut"))
    s = await reaches(h, Stage.REFUNDED)

    async def credit_note_issued() -> bool:
        return len(documents()) == 2

    await eventually(credit_note_issued)
    await asyncio.to_thread(projection.record, TransitionRecord(s, s.timeline[-1], []))
    receipt_again, credit = documents()
    assert receipt_again.number == receipt.number
    assert (credit.kind, credit.amount_cents, credit.number) == (
        CREDIT_NOTE,
        40000,
        receipt.number + 1,
    )
    with world.sessions() as db:
        mails = db.scalars(
            select(OutboxEmail).where(
                OutboxEmail.internship_id == iid, OutboxEmail.kind == "cancelled"
            )
        ).all()
    to_employer = [m for m in mails if m.recipient_role == "employer"]
    assert to_employer and all(f"/documents/{credit.id}" in m.text_body for m in to_employer)
