"""The email the relay writes (activities/notifications.py, `Mailer`): what a mail client
reads back from its bytes, as the SMTP server receives them."""

from __future__ import annotations

import email
import email.policy
import re
from types import SimpleNamespace
from typing import Any

import pytest

from activities.notifications import Mailer, UnsafeHeader
from core.calendars import CANCEL, REQUEST

SENDER = "Micro-internships <noreply@microinternships.example>"


def outbox_row(**fields: Any) -> Any:
    row = {
        "internship_id": "40816e4f1004bc82",
        "seq": 13,
        "kind": "delivery_failed_payout_confirmation",
        "recipient_role": "employer",
        "recipient_id": "f3a9c2b1d4e5f6a7",
        "to_email": "finance@northwind.example",
        "subject": "Northwind — “Market research” is due Dec 20, 2026 09:00 PST",
        "reply_to": "reply+abc.def@microinternships.example",
        "text_body": "Hello Ada,\n\nYour work is due — see the page.\n",
        "html_body": "<p>Hello Ada,</p><p>Your work is due — see the page.</p>",
        "calendar": None,
    }
    return SimpleNamespace(**{**row, **fields})


def text(part: email.message.MIMEPart | None) -> str:
    """A text part's content with MIME's CRLF line ends read as a client shows them."""
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def read_back(row: Any, sender: str = SENDER) -> email.message.EmailMessage:
    raw = Mailer("127.0.0.1", 25, sender)._message(row)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # SMTP's line ends only
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_headers_read_back_as_written_however_long() -> None:
    row = outbox_row()
    msg = read_back(row)
    assert msg["Message-ID"] == (
        "<internship-40816e4f1004bc82.13.delivery_failed_payout_confirmation.employer"
        ".f3a9c2b1d4e5f6a7@microinternships.local>"
    )
    assert msg["Subject"] == row.subject
    assert msg["From"] == SENDER and msg["To"] == row.to_email
    assert msg["Reply-To"] == row.reply_to
    longest = outbox_row(subject="é" * 300)  # the outbox keeps 300 characters of a subject
    assert read_back(longest)["Subject"] == "é" * 300


def test_words_outside_ascii_are_encoded_words_of_a_line_each() -> None:
    raw = Mailer("127.0.0.1", 25, "Équipe Micro <noreply@microinternships.example>")._message(
        outbox_row(subject="é" * 300)
    )
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert all(len(line) <= 78 for line in head.split("\r\n") if "=?" in line)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Équipe Micro",
        "noreply@microinternships.example",
    )


def test_an_international_address_is_written_as_utf8() -> None:
    raw = Mailer("127.0.0.1", 25, SENDER)._message(outbox_row(to_email="josé@uni.example"))
    assert "To: josé@uni.example\r\n".encode() in raw  # SMTPUTF8: raw, not an encoded word
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["To"] == "josé@uni.example"
    assert msg["Message-ID"].startswith("<internship-40816e4f1004bc82.13.")
    assert text(msg.get_body(("plain",))) == "Hello Ada,\n\nYour work is due — see the page.\n"


def test_text_and_html_alternatives_and_no_reply_to_when_none() -> None:
    msg = read_back(outbox_row(reply_to=None))
    assert msg.get_content_type() == "multipart/alternative"
    assert "Reply-To" not in msg
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text(plain) == "Hello Ada,\n\nYour work is due — see the page.\n"
    assert "<p>Your work is due — see the page.</p>" in text(html)
    assert list(msg.iter_attachments()) == []


def test_the_invitation_is_an_attachment_with_its_method() -> None:
    for method in (REQUEST, CANCEL):
        ics = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:{method}\r\nEND:VCALENDAR\r\n"
        msg = read_back(outbox_row(calendar=ics))
        assert msg.get_content_type() == "multipart/mixed"
        [invite] = msg.iter_attachments()
        assert invite.get_content_type() == "text/calendar"
        assert invite.get_param("method") == method
        assert invite.get_filename() == "invite.ics"
        assert f"METHOD:{method}" in text(invite)
        assert msg.get_body(("plain",)) is not None


def test_a_body_holding_its_own_boundaries_is_read_back_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer picks its boundaries without reading the text (quoted-printable escapes every
    "=" of a body): a body holding them as lines of its own must still come back whole."""
    token = "0123456789abcdef01234567"
    monkeypatch.setattr("activities.notifications.secrets.token_hex", lambda _: token)
    ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    raw = Mailer("127.0.0.1", 25, SENDER)._message(outbox_row(calendar=ics))
    boundaries = [b.decode() for b in re.findall(rb'boundary="([^"]+)"', raw)]
    assert sorted(boundaries) == [f"=_a{token}", f"=_m{token}"]
    pasted = "".join(f"--{b}\n--{b}--\n" for b in boundaries)
    msg = read_back(outbox_row(text_body=pasted, html_body=f"<pre>{pasted}</pre>", calendar=ics))
    assert text(msg.get_body(("plain",))) == pasted
    assert pasted in text(msg.get_body(("html",)))
    [invite] = msg.iter_attachments()
    assert "METHOD:REQUEST" in text(invite)


def test_a_line_break_in_a_header_is_refused_not_written() -> None:
    # The renderer makes a subject one line; this is the mailer's own guard behind it.
    for field in ("subject", "to_email", "reply_to"):
        with pytest.raises(UnsafeHeader):
            read_back(outbox_row(**{field: "Hello\r\nBcc: everyone@example.com"}))
