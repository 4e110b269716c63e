"""The outbox relay: every email once, in order per address, whatever the mail relay does.

Runs against the session's real database (SQLite, or Postgres with DATABASE_URL) and real SMTP
listeners. The rows here are queued "in the future" and each relay under test runs on a clock
there, so the worker's own relay (running for the other tests) never touches them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from activities.notifications import Mailer, Templates
from core.accounts import founder_of
from core.db import FAILED, PENDING, SENT, Employer, Internship, OutboxEmail
from dev.harness import free_port
from worker.outbox import OpsAlerts, OutboxRelay

LATER = datetime(2100, 1, 1, tzinfo=UTC)
OPS_EMAIL = "ops-outbox-test@example.com"


class ScriptedRelay:
    """An SMTP relay that refuses some mailboxes for good (550), others once for now (451),
    and records what it accepted, in order."""

    def __init__(self, gone: tuple[str, ...] = (), busy_once: tuple[str, ...] = ()) -> None:
        self.gone, self.busy = set(gone), set(busy_once)
        self.accepted: list[tuple[str, str]] = []  # (recipient, subject)
        self.greeted = 0  # SMTP sessions opened (one EHLO each)
        self._lock = threading.Lock()

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.greeted += 1
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        return responses

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.gone:
            return "550 5.1.1 No such user"
        with self._lock:
            if address in self.busy:
                self.busy.discard(address)
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        subject = next(
            line.split(":", 1)[1].strip()
            for line in envelope.content.decode().splitlines()
            if line.startswith("Subject:")
        )
        with self._lock:
            self.accepted += [(to, subject) for to in envelope.rcpt_tos]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[ScriptedRelay, Controller]]:
    handler = ScriptedRelay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller
    controller.stop()


def address(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def queue(sessions: sessionmaker, *recipients: str, internship: str = "") -> list[int]:
    """Queue one email per recipient, in order, due only on the test relays' clock."""
    internship = internship or uuid.uuid4().hex[:16]
    with sessions.begin() as db:
        rows = [
            OutboxEmail(
                internship_id=internship,
                seq=n,
                kind="overdue",
                recipient_role="launcher",
                recipient_id=f"r{n}",
                to_email=to,
                subject=f"email {n}",
                text_body="t",
                html_body="<p>h</p>",
                next_attempt_at=LATER,
            )
            for n, to in enumerate(recipients, start=1)
        ]
        db.add_all(rows)
        db.flush()
        return [r.id for r in rows]


def relay(sessions: sessionmaker, port: int, at: datetime) -> OutboxRelay:
    mailer = Mailer("127.0.0.1", port, "noreply@example.com")
    ops = OpsAlerts(Templates(), OPS_EMAIL, "http://api.example.com")
    return OutboxRelay(sessions, mailer, ops, clock=lambda: at)


def statuses(sessions: sessionmaker, ids: list[int]) -> list[tuple[str, int]]:
    with sessions() as db:
        rows = db.scalars(
            select(OutboxEmail).where(OutboxEmail.id.in_(ids)).order_by(OutboxEmail.id)
        )
        return [(r.status, r.attempts) for r in rows]


def test_a_mail_outage_defers_with_backoff_then_sends_once(
    sessions: sessionmaker, smtp: tuple[ScriptedRelay, Controller]
) -> None:
    handler, controller = smtp
    one, two = address("one"), address("two")
    ids = queue(sessions, one, two)
    now = LATER + timedelta(seconds=1)
    assert relay(sessions, free_port(), now).deliver_due() == 2  # nobody listening there
    assert statuses(sessions, ids) == [(PENDING, 1), (PENDING, 1)]
    with sessions() as db:
        first = db.get(OutboxEmail, ids[0])
        assert first is not None and first.last_error and "Connection" in first.last_error
    up = relay(sessions, controller.port, now + timedelta(seconds=1))
    assert up.deliver_due() == 0  # still backing off (2 s after the first attempt)
    up = relay(sessions, controller.port, now + timedelta(seconds=3))
    assert up.deliver_due() == 2
    assert up.deliver_due() == 0  # nothing is sent twice
    assert statuses(sessions, ids) == [(SENT, 2), (SENT, 2)]
    assert handler.accepted == [(one, "email 1"), (two, "email 2")]


def test_a_refused_address_fails_alone_and_later_emails_go_out(
    sessions: sessionmaker, smtp: tuple[ScriptedRelay, Controller]
) -> None:
    handler, controller = smtp
    gone, ada = address("gone"), address("ada")
    handler.gone.add(gone)
    ids = queue(sessions, gone, ada, gone, ada)
    at = LATER + timedelta(seconds=1)
    relay(sessions, controller.port, at).deliver_due()
    assert statuses(sessions, ids) == [(FAILED, 1), (SENT, 1), (FAILED, 1), (SENT, 1)]
    assert relay(sessions, controller.port, at + timedelta(hours=1)).deliver_due() == 0
    assert handler.accepted == [(ada, "email 2"), (ada, "email 4")]
    with sessions() as db:
        failed = db.get(OutboxEmail, ids[0])
        assert failed is not None and "550" in (failed.last_error or "")


def test_a_relay_without_smtputf8_fails_a_non_ascii_address_alone(
    sessions: sessionmaker,
) -> None:
    handler = ScriptedRelay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    try:
        jose, lin = f"josé-{uuid.uuid4().hex[:6]}@uni.example.com", address("lin")
        ids = queue(sessions, jose, lin)
        relay(sessions, controller.port, LATER + timedelta(seconds=1)).deliver_due()
        assert statuses(sessions, ids) == [(FAILED, 1), (SENT, 1)]
        assert handler.accepted == [(lin, "email 2")]
    finally:
        controller.stop()


def test_each_address_hears_in_order_after_a_temporary_refusal(
    sessions: sessionmaker, smtp: tuple[ScriptedRelay, Controller]
) -> None:
    handler, controller = smtp
    busy, other = address("busy"), address("other")
    handler.busy.add(busy)
    ids = queue(sessions, busy, other, busy)
    at = LATER + timedelta(seconds=1)
    relay(sessions, controller.port, at).deliver_due()
    # The first email to `busy` waits; its second may not overtake it. Others are not held up.
    assert statuses(sessions, ids) == [(PENDING, 1), (SENT, 1), (PENDING, 0)]
    assert relay(sessions, controller.port, at + timedelta(seconds=1)).deliver_due() == 0
    relay(sessions, controller.port, at + timedelta(seconds=3)).deliver_due()
    assert statuses(sessions, ids) == [(SENT, 2), (SENT, 1), (SENT, 1)]
    assert handler.accepted == [(other, "email 2"), (busy, "email 1"), (busy, "email 3")]


def test_a_relay_that_dies_mid_batch_leaves_leases_that_expire(
    sessions: sessionmaker, smtp: tuple[ScriptedRelay, Controller]
) -> None:
    handler, controller = smtp
    ids = queue(sessions, address("a"), address("b"))
    at = LATER + timedelta(seconds=1)
    crashed = relay(sessions, controller.port, at)
    assert [r.id for r in crashed._claim()] == ids  # claimed, then the process died
    soon = relay(sessions, controller.port, at + timedelta(minutes=1))
    assert soon.deliver_due() == 0  # still leased to the dead relay
    later = relay(sessions, controller.port, at + timedelta(minutes=3))
    assert later.deliver_due() == 2
    assert statuses(sessions, ids) == [(SENT, 1), (SENT, 1)]
    assert len(handler.accepted) == 2


def test_concurrent_relays_send_every_email_once_in_order(
    sessions: sessionmaker, smtp: tuple[ScriptedRelay, Controller]
) -> None:
    handler, controller = smtp
    people = [address(f"p{n}") for n in range(4)]
    ids = queue(sessions, *(people[n % 4] for n in range(40)))
    at = LATER + timedelta(seconds=1)
    relays = [relay(sessions, controller.port, at) for _ in range(3)]
    for r in relays:
        r.batch = 7

    def drain(r: OutboxRelay) -> None:
        while r.deliver_due():
            pass

    threads = [threading.Thread(target=drain, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    drain(relays[0])  # whatever a relay skipped while another held an earlier email
    assert statuses(sessions, ids) == [(SENT, 1)] * 40
    assert sorted(handler.accepted, key=lambda a: int(a[1].split()[1])) == [
        (people[n % 4], f"email {n + 1}") for n in range(40)
    ]
    for person in people:
        theirs = [int(subject.split()[1]) for to, subject in handler.accepted if to == person]
        assert theirs == sorted(theirs)


def test_ops_are_told_when_an_address_is_refused_for_good(
    sessions: sessionmaker, smtp: tuple[ScriptedRelay, Controller]
) -> None:
    handler, controller = smtp
    gone = address("gone")
    handler.gone.add(gone)
    internship = uuid.uuid4().hex[:16]
    with sessions.begin() as db:
        employer = Employer(
            id=uuid.uuid4().hex[:16],
            name="Ada",
            email=address("ada"),
            company="Acme",
            stripe_customer_id="cus_x",
            stripe_payment_method="pm_x",
        )
        db.add(employer)
        db.flush()
        db.add(founder_of(employer))
        db.add(
            Internship(
                id=internship,
                employer_id=employer.id,
                title="Blog article",
                description="d",
                company="Acme",
                category="marketing",
                stage="in_progress",
                estimated_hours=10,
                fee_cents=40000,
                currency="usd",
                duration_days=7,
                posted_at=LATER,
                updated_at=LATER,
            )
        )
    [failed] = queue(sessions, gone, internship=internship)
    relay(sessions, controller.port, LATER + timedelta(seconds=1)).deliver_due()
    assert statuses(sessions, [failed]) == [(FAILED, 1)]
    with sessions() as db:
        [alert] = db.scalars(
            select(OutboxEmail).where(
                OutboxEmail.internship_id == internship, OutboxEmail.to_email == OPS_EMAIL
            )
        ).all()
    assert alert.recipient_role == "ops" and alert.kind == "delivery_failed_overdue"
    assert alert.subject.startswith("[Email failed] Blog article")
    assert "550" in alert.text_body and "the launcher r1" in alert.text_body


def test_one_connection_carries_every_pass_and_a_dropped_one_is_replaced(
    sessions: sessionmaker,
) -> None:
    """A handshake per batch cost both sides CPU: the relay keeps its connection between
    passes, and one the server closed meanwhile is replaced before anything is deferred."""
    handler, port = ScriptedRelay(), free_port()
    first = Controller(handler, hostname="127.0.0.1", port=port)
    first.start()
    keeps = relay(sessions, port, LATER + timedelta(seconds=1))
    for n in range(3):
        ids = queue(sessions, address(f"pass{n}"))
        keeps.deliver_due()  # (other tests' leftovers may come along)
        assert statuses(sessions, ids) == [(SENT, 1)]
    assert handler.greeted == 1

    # The server goes away and another comes up on the same port: the kept connection is dead.
    first.stop()
    second = Controller(handler, hostname="127.0.0.1", port=port)
    second.start()
    try:
        ids = queue(sessions, address("after"))
        keeps.deliver_due()  # (other tests' leftovers may come along)
        assert statuses(sessions, ids) == [(SENT, 1)]  # sent on a new connection, not deferred
        assert handler.greeted == 2
    finally:
        keeps.mailer.close()
        second.stop()
