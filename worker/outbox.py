"""The outbox relay: delivers queued emails from the database, beside the Temporal worker.

Workflows only queue emails (the projection writes them in the same transaction as the event),
so no workflow task and no update's answer waits on SMTP. Every worker process runs a relay;
they share the outbox safely:

- a relay claims due rows with a short lease (`next_attempt_at`), on Postgres with
  `FOR UPDATE SKIP LOCKED`, and a conditional update so two relays never claim the same row;
- an address hears in order: a row is claimed only with every earlier pending row of its
  address, and never while an earlier one is leased or backing off;
- each outcome is written as soon as it happens: sent, failed for good (kept, with the error,
  and ops are emailed about it), or deferred with exponential backoff. A relay that dies
  mid-batch leaves leases that expire, so another relay sends those rows (the Message-ID is
  stable, for de-duplication).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from activities.notifications import Delivery, Mailer, Outcome
from core import zones
from core.db import FAILED, PENDING, SENT, Internship, OutboxEmail, utcnow
from core.emails import Templates, row_context
from core.formats import when
from core.internship import Role, workflow_id
from worker.message_emails import MessageEmails

log = logging.getLogger("worker.outbox")

# Seconds without mail after which the relay closes its SMTP connection (servers drop idle
# ones after a few minutes anyway).
IDLE_CLOSE = 10.0


class OpsAlerts:
    """Queues the email that tells ops an address was refused for good."""

    def __init__(
        self, templates: Templates, ops_email: str, public_base_url: str, ops_time_zone: str = "UTC"
    ) -> None:
        self.templates = templates
        self.ops_email = ops_email
        self.public_base_url = public_base_url
        self.zone = zones.zone(ops_time_zone)

    def delivery_failed(self, db: Session, failed: OutboxEmail, error: str) -> None:
        row = db.get(Internship, failed.internship_id)
        if row is None:
            return  # not an internship's email: the log line is all ops get
        context = row_context(row, self.public_base_url, self.zone)
        email = self.templates.render(
            "delivery_failed",
            {
                "recipient": {"name": "Ops team", "role": Role.OPS.value},
                "internship": context,
                "event": {
                    "kind": "delivery_failed",
                    "actor": "system",
                    "at": when(utcnow(), self.zone),
                    "by": "",
                },
                "details": {
                    "failed_kind": failed.kind,
                    "recipient_role": failed.recipient_role,
                    "recipient_id": failed.recipient_id,
                    "error": error,
                },
            },
        )
        db.add(
            OutboxEmail(
                internship_id=failed.internship_id,
                seq=failed.seq,
                kind=f"delivery_failed_{failed.kind}"[:64],
                recipient_role=Role.OPS.value,
                recipient_id=f"{failed.recipient_role}-{failed.recipient_id}"[:40],
                to_email=self.ops_email,
                subject=email.subject[:300],
                text_body=email.text,
                html_body=email.html,
            )
        )


# The relay's statements, built once: a pass runs several for each email, and building one
# (expressions, an aliased table, its cache key) cost more CPU than SQLite running it.
_ROW, _EARLIER = OutboxEmail, aliased(OutboxEmail)
_DUE = or_(_ROW.next_attempt_at.is_(None), _ROW.next_attempt_at <= bindparam("now"))
# Due rows, each the first pending one of its address unless the earlier ones are due too.
_CANDIDATES = (
    select(_ROW.id, _ROW.to_email)
    .where(
        _ROW.status == PENDING,
        _DUE,
        ~exists().where(
            _EARLIER.status == PENDING,
            _EARLIER.to_email == _ROW.to_email,
            _EARLIER.id < _ROW.id,
            _EARLIER.next_attempt_at > bindparam("now"),
        ),
    )
    .order_by(_ROW.id)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True, of=_ROW)
)
_QUEUED = (
    select(_ROW.id, _ROW.to_email)
    .where(
        _ROW.status == PENDING,
        _ROW.to_email.in_(bindparam("addresses", expanding=True)),
        _ROW.id <= bindparam("last"),
    )
    .order_by(_ROW.id)
)
_LEASE = (
    update(_ROW)
    .where(_ROW.id == bindparam("row_id"), _ROW.status == PENDING, _DUE)
    .values(next_attempt_at=bindparam("until"))
    .execution_options(synchronize_session=False)
)
_CLAIMED = select(_ROW).where(_ROW.id.in_(bindparam("ids", expanding=True))).order_by(_ROW.id)
_SENT = (
    update(_ROW)
    .where(_ROW.id == bindparam("row_id"), _ROW.status == PENDING)
    .values(
        status=SENT,
        sent_at=bindparam("now"),
        next_attempt_at=None,
        attempts=_ROW.attempts + 1,
        last_error=None,
    )
    .execution_options(synchronize_session=False)
)


class OutboxRelay:
    def __init__(
        self,
        sessions: sessionmaker,
        mailer: Mailer,
        ops: OpsAlerts,
        *,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
        max_backoff: timedelta = timedelta(minutes=10),
        poll_seconds: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        messages: MessageEmails | None = None,
    ) -> None:
        self.sessions = sessions
        self.mailer = mailer
        self.ops = ops
        self.messages = messages
        self._messages_next = 0.0  # time.monotonic() of the next look for message emails
        self.batch = batch
        self.lease = lease
        self.max_backoff = max_backoff
        self.poll_seconds = poll_seconds
        self.clock = clock
        # Set when this process queues email, so it goes out at once rather than at the next poll.
        self.wake = threading.Event()
        self._stopping = False

    async def run(self) -> None:
        """Deliver until `stop`: at once when woken, else every `poll_seconds`. The SMTP
        connection stays open while mail flows and closes after IDLE_CLOSE of none."""
        idle_since = time.monotonic()
        while not self._stopping:
            try:
                busy = await asyncio.to_thread(self.deliver_due)
            except Exception:  # the database is down: keep the relay alive and try again
                log.exception("outbox relay pass failed")
                busy = 0
            if busy:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_CLOSE:
                await asyncio.to_thread(self.mailer.close)
            if not busy and not self._stopping:
                await asyncio.to_thread(self.wake.wait, self.poll_seconds)
                self.wake.clear()
        await asyncio.to_thread(self.mailer.close)

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()

    def deliver_due(self) -> int:
        """One pass: queue the message emails now due (once per `poll_seconds`), claim due
        rows, send them, record each outcome. Returns rows claimed."""
        if self.messages is not None and time.monotonic() >= self._messages_next:
            # At most once per poll: a wake-up for a lifecycle email need not look again.
            self._messages_next = time.monotonic() + self.poll_seconds
            self.messages.queue_due()
        rows = self._claim()
        for delivery in self.mailer.send(rows):
            self._record(delivery)
        return len(rows)

    def _claim(self) -> list[OutboxEmail]:
        now = self.clock()
        with self.sessions.begin() as db:
            candidates = db.execute(_CANDIDATES, {"now": now, "batch": self.batch}).all()
            if not candidates:
                return []
            # Every earlier pending row of an address must come along (a concurrent relay may
            # hold one that the query above skipped): keep only each address's leading rows.
            queued: dict[str, list[int]] = defaultdict(list)
            for id_, to in db.execute(
                _QUEUED,
                {
                    "addresses": sorted({to for _, to in candidates}),
                    "last": max(id_ for id_, _ in candidates),
                },
            ):
                queued[to].append(id_)
            claimed: list[int] = []
            taken: dict[str, int] = defaultdict(int)
            lease = {"now": now, "until": now + self.lease}
            for id_, to in candidates:
                if queued[to][taken[to] : taken[to] + 1] != [id_]:
                    continue  # an earlier email to this address is not ours to send first
                if db.execute(_LEASE, {**lease, "row_id": id_}).rowcount:
                    claimed.append(id_)
                    taken[to] += 1
            return list(db.scalars(_CLAIMED, {"ids": claimed}))

    def _record(self, delivery: Delivery) -> None:
        now = self.clock()
        with self.sessions.begin() as db:
            if delivery.outcome == Outcome.SENT:  # the common case: one statement
                db.execute(_SENT, {"now": now, "row_id": delivery.row_id})
                return
            email = db.get(OutboxEmail, delivery.row_id)
            if email is None or email.status != PENDING:
                return
            if delivery.outcome == Outcome.WAITING:
                email.next_attempt_at = None  # released: it follows its address's earlier email
                return
            email.attempts += 1
            email.last_error = delivery.error
            if delivery.outcome == Outcome.REFUSED:
                email.status, email.next_attempt_at = FAILED, None
                log.warning(
                    "email %s (%s to the %s) failed for good: %s",
                    email.id,
                    email.kind,
                    email.recipient_role,
                    delivery.error,
                    extra={"workflow_id": workflow_id(email.internship_id)},
                )
                if email.recipient_role != Role.OPS.value:  # no alerts about alerts
                    self.ops.delivery_failed(db, email, delivery.error or "refused")
                    self.wake.set()
            else:
                backoff = min(timedelta(seconds=2**email.attempts), self.max_backoff)
                email.next_attempt_at = now + backoff
