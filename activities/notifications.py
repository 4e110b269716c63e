"""Email: Jinja2 templates rendered into the outbox, and SMTP delivery of outbox rows.

Rendering happens when the projection records an event (same transaction as the outbox row);
delivery is a separate local activity so a slow or down relay retries without blocking anyone.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from temporalio import activity

from core.db import OutboxEmail, utcnow

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def format_money(cents: int, currency: str) -> str:
    """An amount as people read it in emails and on pages: $1,234.50, or 1,234.50 CHF."""
    symbol = CURRENCY_SYMBOLS.get(currency.lower())
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


@dataclass
class RenderedEmail:
    subject: str
    text: str
    html: str


class Templates:
    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, kind: str, context: dict[str, Any]) -> RenderedEmail:
        text = self.env.get_template(f"email/{kind}.txt")
        subject = "".join(text.blocks["subject"](text.new_context(context))).strip()
        return RenderedEmail(
            subject=" ".join(subject.split()),
            text=text.render(context),
            html=self.env.get_template(f"email/{kind}.html").render(context),
        )


class Mailer:
    def __init__(self, sessions: sessionmaker, host: str, port: int, sender: str) -> None:
        self.sessions = sessions
        self.host = host
        self.port = port
        self.sender = sender

    @activity.defn(name="deliver_emails")
    def deliver(self, outbox_ids: list[int]) -> int:
        """Send each pending outbox row once; rows already sent are skipped on retry.

        A relay that is down (connection errors, 4xx) fails the activity so it retries; an
        address the relay refuses for good (5xx) marks that row failed and the rest go on.
        """
        sent = 0
        with self.sessions() as db:
            rows = db.scalars(
                select(OutboxEmail)
                .where(OutboxEmail.id.in_(outbox_ids), OutboxEmail.status == "pending")
                .order_by(OutboxEmail.id)
            ).all()
            if not rows:
                return 0
            try:
                with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                    for row in rows:
                        row.attempts += 1
                        try:
                            smtp.send_message(self._message(row))
                        except (
                            smtplib.SMTPRecipientsRefused,
                            smtplib.SMTPResponseException,
                        ) as err:
                            if not _permanent(err):
                                raise
                            row.status, row.last_error = "failed", f"{type(err).__name__}: {err}"
                        else:
                            row.status, row.sent_at = "sent", utcnow()
                            sent += 1
                        db.commit()  # at once: a later failure must not resend this one
            except (OSError, smtplib.SMTPException) as err:
                for row in rows:
                    if row.status == "pending":
                        row.last_error = f"{type(err).__name__}: {err}"
                db.commit()
                raise
        return sent

    def _message(self, row: OutboxEmail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = row.to_email
        msg["Subject"] = row.subject
        # Stable id per outbox row: a duplicate after a crash mid-send is recognisable downstream.
        msg["Message-ID"] = (
            f"<internship-{row.internship_id}.{row.seq}.{row.kind}"
            f".{row.recipient_role}.{row.recipient_id}@microinternships.local>"
        )
        msg.set_content(row.text_body)
        msg.add_alternative(row.html_body, subtype="html")
        return msg


def _permanent(err: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException) -> bool:
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in err.recipients.values())
    return err.smtp_code >= 500
