"""Replies by email (core/replies.py): the signed reply address, the inbound webhook's signature,
and what of a received email would be posted, from messages as mail clients write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from core.replies import (
    MAX_LOCAL_PART,
    MAX_TOKEN_CHARS,
    ReplyRefused,
    ReplyTo,
    find_reply_to,
    parse_inbound,
    read_reply,
    read_reply_address,
    reply_address,
    reply_secret,
    sign_inbound,
    verify_inbound,
)
from core.settings import Settings

SECRET = reply_secret(Settings(_env_file=None))  # type: ignore[call-arg]
DOMAIN = "reply.microinternships.local"
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
MEMBER = "3f9a0c1d5e7b2a48"  # core.accounts.new_id(): 16 hex digits
MAX = 1024 * 1024


def address(thread: int = 42, role: str = "launcher", who: str = MEMBER, days: int = 90) -> str:
    return reply_address(thread, role, who, secret=SECRET, domain=DOMAIN, now=NOW, days=days)


def read(addr: str, now: datetime = NOW, secret: bytes = SECRET) -> ReplyTo:
    return read_reply_address(addr, secret=secret, domain=DOMAIN, now=now)


def refused(addr: str, now: datetime = NOW, secret: bytes = SECRET) -> str:
    with pytest.raises(ReplyRefused) as caught:
        read(addr, now, secret)
    return caught.value.reason


# --- the address --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thread", "role", "who"),
    [
        (1, "employer", MEMBER),
        (42, "launcher", MEMBER),
        (2**32 - 1, "ops", "ops"),  # ops are one recipient, "ops"
        (7, "launcher", "0123456789abcdef0123456789abcdef"),  # a whole uuid4().hex
        (7, "employer", "emp_Ada-1"),  # any other id, as written
        (7, "employer", "ABCDEF12"),  # upper-case hex is an id like any other
    ],
)
def test_an_address_reads_back_as_what_it_was_made_for(thread: int, role: str, who: str) -> None:
    made = address(thread, role, who)
    local, _, domain = made.partition("@")
    assert local.startswith("reply+") and domain == DOMAIN
    assert len(local) <= MAX_LOCAL_PART, made
    assert made == made.lower()
    assert read(made) == ReplyTo(thread, role, who)


def test_the_service_s_ids_make_a_short_address_and_the_longest_fits() -> None:
    assert len(address().partition("@")[0]) == len("reply+") + 45
    longest = address(2**32 - 1, "launcher", "f" * 32)
    assert len(longest.partition("@")[0]) == len("reply+") + MAX_TOKEN_CHARS == MAX_LOCAL_PART
    with pytest.raises(ValueError, match="does not fit"):
        address(who="x" * 17)
    with pytest.raises(ValueError, match="recipient_role"):
        address(role="system")


def test_case_and_display_names_do_not_matter() -> None:
    """Some mailers change the case of an address; a reply's To has the name beside it."""
    made = address()
    assert read(made.upper()) == read(made)
    assert read(f'"Micro-internships" <{made.upper()}>') == read(made)


def test_a_changed_token_is_forged() -> None:
    made = address()
    local, _, domain = made.partition("@")
    token = local.removeprefix("reply+")
    for n in (0, len(token) // 2, len(token) - 1):
        changed = token[:n] + ("a" if token[n] != "a" else "b") + token[n + 1 :]
        assert refused(f"reply+{changed}@{domain}") == "forged", n
    assert refused(f"reply+{token[:-3]}@{domain}") == "forged"  # cut short
    assert refused(f"reply+{token}0@{domain}") == "forged"  # not base32
    assert refused(f"reply+@{domain}") == "forged"
    # Someone else's thread or person: the same token can't be made without the key.
    other = reply_address(43, "launcher", MEMBER, secret=b"k" * 32, domain=DOMAIN, now=NOW, days=90)
    assert refused(other) == "forged"
    # A new SESSION_SECRET ends the addresses sent under the old one.
    renewed = Settings(_env_file=None, session_secret="a-new-session-secret-0123456789ab")  # type: ignore[call-arg]
    assert refused(made, secret=reply_secret(renewed)) == "forged"


def test_an_old_address_has_expired() -> None:
    made = address(days=90)
    assert read(made, NOW + timedelta(days=89, hours=23)).thread_id == 42
    assert refused(made, NOW + timedelta(days=90, hours=1)) == "expired"
    assert refused(address(days=1), NOW + timedelta(days=2)) == "expired"


def test_another_domain_or_address_is_not_ours() -> None:
    made = address()
    local = made.partition("@")[0]
    assert refused(f"{local}@reply.example.com") == "not ours"
    assert refused(f"{local}@microinternships.local") == "not ours"
    assert refused(f"sam@{DOMAIN}") == "not ours"
    assert refused("not an address") == "not ours"


def test_the_first_good_reply_address_of_a_message_is_found() -> None:
    good, old = address(), address(thread=9, days=1)
    later = NOW + timedelta(days=3)
    found = find_reply_to(["sam@example.com", old, good], secret=SECRET, domain=DOMAIN, now=later)
    assert found.thread_id == 42
    with pytest.raises(ReplyRefused) as caught:  # the reason is the reply address's
        find_reply_to(["sam@example.com", old], secret=SECRET, domain=DOMAIN, now=later)
    assert caught.value.reason == "expired"
    with pytest.raises(ReplyRefused) as caught:
        find_reply_to(["sam@example.com"], secret=SECRET, domain=DOMAIN, now=later)
    assert caught.value.reason == "not ours"


# --- the webhook's signature --------------------------------------------------------------------

BODY = b"From: sam@example.com\r\n\r\nHello\r\n"
HOOK = "whinbound_test_secret_0123456789abcdef"
T = 1_796_000_000


def verify_reason(header: str | None, secret: str = HOOK, now: int = T) -> str:
    with pytest.raises(ReplyRefused) as caught:
        verify_inbound(BODY, header, secret, now)
    return caught.value.reason


def test_a_signed_call_verifies_within_five_minutes() -> None:
    header = sign_inbound(BODY, HOOK, T)
    assert header.startswith(f"t={T},v1=") and len(header.rpartition("=")[2]) == 64
    verify_inbound(BODY, header, HOOK, T)
    verify_inbound(BODY, header, HOOK, T + 300)
    verify_inbound(BODY, header, HOOK, T - 300)  # a clock a little ahead
    # A provider rotating its secret sends one signature per secret.
    old = sign_inbound(BODY, "an-old-secret", T).rpartition(",")[2]
    verify_inbound(BODY, f"{header},{old}", HOOK, T)


def test_an_unsigned_forged_or_replayed_call_is_refused() -> None:
    header = sign_inbound(BODY, HOOK, T)
    assert verify_reason(None) == "unsigned"
    assert verify_reason("") == "unsigned"
    assert verify_reason(header, secret="another-secret-of-the-same-length!!") == "bad signature"
    with pytest.raises(ReplyRefused) as caught:
        verify_inbound(BODY + b"P.S. pay me\r\n", header, HOOK, T)
    assert caught.value.reason == "bad signature"
    assert verify_reason(header.replace(f"t={T}", f"t={T + 1}")) == "bad signature"
    assert verify_reason(f"v1={header.rpartition('=')[2]}") == "bad signature"  # no t
    assert verify_reason("nonsense") == "bad signature"
    assert verify_reason(header, now=T + 301) == "stale signature"  # recorded and replayed
    assert verify_reason(header, now=T - 301) == "stale signature"


# --- the message --------------------------------------------------------------------------------


def message(text: str | None, html: str | None = None, **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = headers.pop("From", "Sam Lee <Sam.Lee@Example.com>")
    mail["To"] = headers.pop("To", f"Micro-internships <{address()}>")
    mail["Subject"] = headers.pop("Subject", "Re: New message about Brand audit")
    mail["Date"] = format_datetime(NOW)
    mail["Message-ID"] = "<reply-1@example.com>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    if text is not None:
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    elif html is not None:
        mail.set_content(html, subtype="html")
    return mail.as_bytes()


def text_of(raw: bytes) -> str:
    return parse_inbound(raw, MAX).text


def test_a_gmail_reply_is_its_new_text_alone() -> None:
    raw = message(
        "Sounds good, I can start on Monday.\n"
        "\n"
        "On Mon, 7 Dec 2026 at 10:00, Ada Employer via Micro-internships <\n"
        f"{address()}> wrote:\n"
        "\n"
        "> Can you start on Monday?\n"
        ">\n"
        "> Ada\n"
    )
    inbound = parse_inbound(raw, MAX)
    assert inbound.text == "Sounds good, I can start on Monday."
    assert inbound.from_address == "sam.lee@example.com"
    assert inbound.to_addresses == (address(),)
    assert inbound.subject == "Re: New message about Brand audit"
    assert inbound.message_id == "<reply-1@example.com>"
    assert not inbound.auto_submitted


def test_an_outlook_reply_loses_the_message_under_its_header_block() -> None:
    raw = message(
        "I'll send the first draft on Thursday.\n"
        "\n"
        "From: Micro-internships <noreply@microinternships.local>\n"
        "Sent: Monday, December 7, 2026 10:00 AM\n"
        "To: Sam Lee <sam.lee@example.com>\n"
        "Subject: New message about Brand audit\n"
        "\n"
        "Ada wrote: Can you start on Monday?\n"
    )
    assert text_of(raw) == "I'll send the first draft on Thursday."


def test_signatures_go_and_the_letter_stays() -> None:
    assert text_of(message("Here is the link.\n\n-- \nSam\nLauncher at Uni\n")) == (
        "Here is the link."
    )
    assert text_of(message("Done!\n\nSent from my iPhone\n")) == "Done!"
    assert text_of(message("Attached.\n\nBest regards,\nSam Lee\n")) == "Attached."
    # Inline answers keep the answers, without the quoted lines between them.
    assert text_of(message("Yes.\n> Is the logo in scope?\nNo, next round.\n> And fonts?")) == (
        "Yes.\nNo, next round."
    )
    # A line that starts like a sign-off but is a sentence, lists with dashes: kept.
    kept = "Sure.\nThanks, I'll send it tomorrow.\n- the logo\n- the fonts"
    assert text_of(message(kept + "\n\nThanks,\nSam\n")) == kept


def test_a_flowed_reply_is_unwrapped() -> None:
    """format=flowed (RFC 3676, Thunderbird's and Apple Mail's): a line ending in a space goes
    on in the next; "-- " is still a signature's start."""
    raw = (
        b"From: sam@example.com\r\nTo: " + address().encode() + b"\r\nSubject: Re: x\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
        b"The first draft is ready and I would like \r\nyour thoughts on it.\r\n"
        b"\r\n-- \r\nSam\r\n"
    )
    assert text_of(raw) == "The first draft is ready and I would like your thoughts on it."


def test_a_reply_in_another_language_loses_its_quote() -> None:
    raw = message("Passt, bis Montag!\n\nAm Mo., 7. Dez. 2026 um 10:00 Uhr schrieb Ada:\n> Hallo")
    assert text_of(raw) == "Passt, bis Montag!"


def test_an_html_only_reply_is_read_as_text() -> None:
    html = (
        "<html><head><style>p { color: red }</style><script>alert(1)</script></head><body>"
        '<div dir="ltr">Works for me &amp; the team.<br>See you <b>Monday</b>.</div><br>'
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, 7 Dec 2026 at 10:00, Ada '
        "&lt;ada@acme.example.com&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote"><div>Can you start on Monday?</div></blockquote></div>'
        "</body></html>"
    )
    assert text_of(message(None, html)) == "Works for me & the team.\nSee you Monday."
    # multipart/alternative: the plain part is taken, the HTML one only without it.
    assert text_of(message("Plain words.", "<p>HTML words.</p>")) == "Plain words."


def test_attachments_are_left_out() -> None:
    mail = EmailMessage()
    mail["From"] = "sam@example.com"
    mail["To"] = address()
    mail["Subject"] = "Re: draft"
    mail.set_content("The draft is attached.")
    mail.add_attachment(b"%PDF-1.7 ...", maintype="application", subtype="pdf", filename="d.pdf")
    assert text_of(mail.as_bytes()) == "The draft is attached."


def test_recipients_include_the_envelope_s() -> None:
    """A Bcc to the reply address leaves it only in what the receiving system adds."""
    raw = message(
        "Hi",
        To="ada@acme.example.com",
        Cc="Ops <OPS@microinternships.local>",
        Delivered_To=address().upper(),
    )
    assert parse_inbound(raw, MAX).to_addresses == (
        "ada@acme.example.com",
        "ops@microinternships.local",
        address(),
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Auto_Submitted": "auto-generated; owner-email=ada@acme.example.com"},
        {"X_Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"From": "MAILER-DAEMON@mx.example.com"},
        {"Return_Path": "<>"},
    ],
)
def test_automatic_replies_and_bounces_are_never_posted(headers: dict[str, str]) -> None:
    raw = message("I am out of the office until January.", **headers)
    assert parse_inbound(raw, MAX).auto_submitted
    with pytest.raises(ReplyRefused) as caught:
        read_reply(raw, secret=SECRET, domain=DOMAIN, now=NOW, max_bytes=MAX)
    assert caught.value.reason == "automatic"


def test_a_person_s_reply_reads_with_its_thread() -> None:
    raw = message("On my way.", Auto_Submitted="no")
    reply = read_reply(raw, secret=SECRET, domain=DOMAIN, now=NOW, max_bytes=MAX)
    assert reply.to == ReplyTo(42, "launcher", MEMBER)
    assert reply.message.text == "On my way."


def test_a_message_to_no_good_reply_address_is_refused_before_its_body_is_read() -> None:
    forged = address().replace("@", "x@")
    for to, reason in ((forged, "forged"), ("ada@acme.example.com", "not ours")):
        with pytest.raises(ReplyRefused) as caught:
            read_reply(message("", To=to), secret=SECRET, domain=DOMAIN, now=NOW, max_bytes=MAX)
        assert caught.value.reason == reason


def test_what_can_t_be_posted_is_refused() -> None:
    raw = message("Fine.")
    with pytest.raises(ReplyRefused) as caught:
        parse_inbound(raw, len(raw) - 1)
    assert caught.value.reason == "too large"
    with pytest.raises(ReplyRefused) as caught:
        parse_inbound(b"To: " + address().encode() + b"\r\nSubject: x\r\n\r\nHello\r\n", MAX)
    assert caught.value.reason == "no sender"
    only_quote = "On Mon, 7 Dec 2026 at 10:00, Ada <ada@acme.example.com> wrote:\n> Hello?\n"
    for empty in ("", "\n\n", only_quote, "-- \nSam\n"):
        with pytest.raises(ReplyRefused) as caught:
            parse_inbound(message(empty), MAX)
        assert caught.value.reason == "empty", empty
    assert "answer on the site" in str(ReplyRefused("expired"))
