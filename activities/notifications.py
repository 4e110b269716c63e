"""Email delivery: SMTP sending of outbox rows (for the worker's outbox relay, worker/outbox.py).

Rendering happens when the projection records an event (same transaction as the outbox row),
with `core.emails`; delivery is the relay's job, outside any workflow task, so a slow or down
mail relay never holds up a transition.
"""

from __future__ import annotations

import secrets
import smtplib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.charset import QP, Charset
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTPUTF8, Compat32, Policy
from email.utils import formataddr, parseaddr
from enum import StrEnum
from typing import Any

from core.calendars import method_of
from core.db import OutboxEmail

# Rendering and formatting are core's (the API renders emails too); still importable from here.
from core.emails import TEMPLATES as TEMPLATES
from core.emails import RenderedEmail as RenderedEmail
from core.emails import Templates as Templates
from core.emails import internship_context as internship_context
from core.formats import format_money as format_money
from core.formats import when as when


class Outcome(StrEnum):
    SENT = "sent"
    REFUSED = "refused"  # for good: this address or message will never be accepted
    DEFERRED = "deferred"  # tried and not taken now: try again after a backoff
    WAITING = "waiting"  # not tried: an earlier email to the same address was deferred


@dataclass
class Delivery:
    row_id: int
    outcome: Outcome
    error: str | None = None


class Mailer:
    """SMTP delivery of outbox rows, in order, over one connection kept open between batches
    (each new connection costs both sides a handshake); `close` ends it when the relay idles."""

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self._envelope_sender = parseaddr(sender)[1]
        self._smtp: smtplib.SMTP | None = None

    def send(self, rows: Sequence[OutboxEmail]) -> Iterator[Delivery]:
        """One outcome per row, as it happens, so each can be recorded at once.

        An address refused for good fails that row alone; a temporary refusal defers the row
        and holds back that address's later rows (each address hears in order); a relay that
        is down or drops the session defers every row not yet sent. A kept connection the
        server has closed meanwhile is replaced once, before anything is sent on it.
        """
        deferred: set[str] = set()
        pending = list(rows)
        fresh = self._smtp is None
        try:
            while pending:
                row = pending[0]
                if row.to_email in deferred:
                    delivery = Delivery(row.id, Outcome.WAITING)
                else:
                    try:
                        delivery = self._send_one(self._connection(), row)
                    except (OSError, smtplib.SMTPServerDisconnected):
                        if fresh:
                            raise
                        self.close()  # the server hung up while idle: once more, anew
                        fresh = True
                        continue
                if delivery.outcome == Outcome.DEFERRED:
                    deferred.add(row.to_email)
                pending.pop(0)
                fresh = True  # something went over this connection: it is not stale
                yield delivery
        except (OSError, smtplib.SMTPException) as err:
            self.close()
            for row in pending:
                yield Delivery(row.id, Outcome.DEFERRED, _describe(err))

    def close(self) -> None:
        """End the kept connection, politely if the server is still there."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = smtplib.SMTP(self.host, self.port, timeout=10)
        return self._smtp

    def _send_one(self, smtp: smtplib.SMTP, row: OutboxEmail) -> Delivery:
        options: list[str] = []
        try:
            if not row.to_email.isascii():
                # Checked before MAIL FROM, so a refusal leaves the session clean for the next row.
                smtp.ehlo_or_helo_if_needed()
                if not smtp.has_extn("smtputf8"):
                    raise smtplib.SMTPNotSupportedError("the relay takes no non-ASCII address")
                options = ["SMTPUTF8"]
            smtp.sendmail(self._envelope_sender, [row.to_email], self._message(row), options)
        except PERMANENT_ERRORS as err:
            return Delivery(row.id, Outcome.REFUSED, _describe(err))
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as err:
            outcome = Outcome.REFUSED if _permanent(err) else Outcome.DEFERRED
            return Delivery(row.id, outcome, _describe(err))
        return Delivery(row.id, Outcome.SENT)

    def _message(self, row: OutboxEmail) -> bytes:
        """The email as sent: text and HTML alternatives, and the invitation if the event has
        one. Built with the email package's compat32 classes, which write a message in a third
        of the time its header-parsing default policy takes (one of the relay's larger costs);
        an international address by the SMTPUTF8 policy, which writes it as UTF-8 (rare)."""
        policy = COMPAT_SMTP if row.to_email.isascii() else SMTPUTF8
        parts = [_text(row.text_body, "plain", policy), _text(row.html_body, "html", policy)]
        # Boundaries of our own, starting "=_": every part is quoted-printable, where an "=" is
        # always an escape, so no part can hold one. (Left to the generator, each message gets
        # a random boundary and a regex compiled to check the text for it: nearly half the time
        # writing an email took.)
        token = secrets.token_hex(12)
        msg = body = MIMEMultipart(
            "alternative", boundary=f"=_a{token}", _subparts=parts, policy=policy
        )
        if row.calendar:
            # The due date's invitation: mail clients offer to add (or move, or remove) the
            # event from a text/calendar part with its METHOD, as invite.ics.
            invite = _text(row.calendar, "calendar", policy)
            invite.set_param("method", method_of(row.calendar))
            invite.add_header("Content-Disposition", "attachment", filename="invite.ics")
            msg = MIMEMultipart(
                "mixed", boundary=f"=_m{token}", _subparts=[body, invite], policy=policy
            )
        msg["From"] = _header(self.sender)
        msg["To"] = _header(row.to_email)
        msg["Subject"] = _header(row.subject)
        if row.reply_to:
            msg["Reply-To"] = _header(row.reply_to)
        # Stable id per outbox row: a duplicate after a crash mid-send is recognisable downstream.
        msg["Message-ID"] = (
            f"<internship-{row.internship_id}.{row.seq}.{row.kind}"
            f".{row.recipient_role}.{row.recipient_id}@microinternships.local>"
        )
        return msg.as_bytes()


class _Compat32Smtp(Compat32):
    """compat32 with SMTP's line ends, as `send_message` wrote them: a display name or subject
    outside ASCII as RFC 2047 words folded at 78, as before; a Message-ID never folded (at 78
    compat32 puts a long one on a line of its own, which parsers read back with a space)."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() in ("from", "reply-to"):  # only the display name may need encoding
            return name, formataddr(parseaddr(value), charset="utf-8")
        return name, value

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() == "message-id":  # one token of ASCII: folding can only break it
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


COMPAT_SMTP = _Compat32Smtp(linesep="\r\n")
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable in the raw message, as the default policy writes it


def _text(content: str, subtype: str, policy: Policy) -> MIMEText:
    return MIMEText(content, subtype, _UTF8_QP, policy=policy)  # type: ignore[arg-type]


class UnsafeHeader(ValueError):
    """A header value with a line break, which would write headers of its own (compat32 does
    not refuse it as the default policy did)."""


def _header(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise UnsafeHeader(f"a line break in a header value: {value[:80]!r}")
    return value


# Refusals no retry can fix: the relay can't take a non-ASCII address (no SMTPUTF8), the
# address can't even be encoded, or a header would carry a line break.
PERMANENT_ERRORS = (smtplib.SMTPNotSupportedError, UnicodeError, UnsafeHeader)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:2000]


def _permanent(err: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException) -> bool:
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in err.recipients.values())
    return err.smtp_code >= 500
