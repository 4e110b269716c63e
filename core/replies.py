"""Replies by email: the signed Reply-To address of a message notification, the mail provider's
signed inbound webhook, and the new text of a reply.

A notification of a new message in a thread goes out with `Reply-To: reply+<token>@REPLY_DOMAIN`,
one address per recipient and thread. The token says, under an HMAC, which thread, who it was
sent to and until when it takes replies (REPLY_ADDRESS_DAYS), so a reply needs no lookup table
and nobody can make up an address for a thread, or for a person, of their choosing. The mail
provider's inbound webhook POSTs the raw message to the API (`INBOUND_PATH`) signed with
INBOUND_EMAIL_SECRET (`X-Inbound-Signature`, Stripe's scheme); `read_reply` turns it into the
thread, the person and the text to post, or refuses it (`ReplyRefused`) with a reason.

The address proves where a reply is going, not who wrote it: an address forwarded to someone
else still reads. The caller compares the sender (`Inbound.from_address`) with the email of the
person the address names before posting anything as them.

Standard library only, apart from mail-parser-reply (the quoted part and signatures of a reply).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Literal

from mailparser_reply import EmailMessage as ParsedReply
from mailparser_reply.constants import MAIL_LANGUAGES

if TYPE_CHECKING:
    from core.settings import Settings

# Where the mail provider's inbound webhook POSTs each message (`message/rfc822`), and the
# header that carries its signature.
INBOUND_PATH = "/v1/inbound-email"
SIGNATURE_HEADER = "X-Inbound-Signature"
# A signed webhook call older (or newer) than this is refused: a recorded call can't be replayed.
SIGNATURE_TOLERANCE_SECONDS = 300

PREFIX = "reply+"
# RFC 5321's limit on a local part; some mail systems refuse anything longer.
MAX_LOCAL_PART = 64

Reason = Literal[
    # The reply address.
    "forged",
    "expired",
    "not ours",
    # The message.
    "too large",
    "no sender",
    "empty",
    "automatic",
    # The person.
    "wrong sender",
    # The webhook call.
    "unsigned",
    "bad signature",
    "stale signature",
]

WHY: dict[str, str] = {
    "forged": "the reply address was not made by this service (or was altered)",
    "expired": "the reply address has expired: answer on the site instead",
    "not ours": "no address of the message is a reply address of this service",
    "too large": "the message is larger than the service takes",
    "no sender": "the message has no From address",
    "empty": "the message has no new text once the quoted part and signature are removed",
    "automatic": "the message is an automatic reply or a bounce, never posted",
    "wrong sender": "only the person the notification was sent to can reply to it",
    "unsigned": f"the call has no {SIGNATURE_HEADER} header",
    "bad signature": f"the {SIGNATURE_HEADER} header does not match the body and secret",
    "stale signature": f"the {SIGNATURE_HEADER} timestamp is more than "
    f"{SIGNATURE_TOLERANCE_SECONDS // 60} minutes from now",
}


class ReplyRefused(ValueError):
    """A reply (or a webhook call) that must not be posted; `reason` says which rule refused."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason: Reason = reason
        message = WHY[reason]
        super().__init__(f"{message} ({detail})" if detail else message)


# --- the reply address --------------------------------------------------------------------------
#
# The token, before base32: one byte of flags (the recipient's role in bits 7-6, bit 5 set when
# the recipient id is lower-case hex packed two digits to a byte, the format version in bits
# 4-0), the thread id (4 bytes), the expiry (hours since the Unix epoch, 3 bytes: good until the
# year 3883), the recipient id, then the first MAC_BYTES of HMAC-SHA256 over all of that.
# Base32, lower case and without padding: mailers may change the case of a local part, and
# base32 reads the same either way. The service's ids (16 hex digits, 8 bytes) make a 45-
# character token, a 51-character local part; the longest id that fits is 16 bytes packed (a
# 32-digit uuid4().hex, or any other id of 16 characters): 58 characters, a local part of 64.

VERSION = 1
ROLES = ("employer", "launcher", "ops")
HEX_ID = 0x20
# 96 bits: each guess at a forgery costs the forger an email, so this is far out of reach.
MAC_BYTES = 12
FIXED_BYTES = 1 + 4 + 3
MAX_ID_BYTES = 16
MAX_TOKEN_CHARS = math.ceil((FIXED_BYTES + MAX_ID_BYTES + MAC_BYTES) * 8 / 5)
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_BASE32 = re.compile(r"[a-z2-7]+")


@dataclass(frozen=True)
class ReplyTo:
    """Whom a reply address was made for, in which thread."""

    thread_id: int
    recipient_role: str  # "employer", "launcher" or "ops"
    recipient_id: str


def reply_secret(settings: Settings) -> bytes:
    """The key of the reply addresses: SESSION_SECRET's, under a label of its own (so no other
    setting is needed, and nothing signed for the pages reads as a reply address). A new
    SESSION_SECRET ends every address already sent."""
    return hmac.new(settings.session_secret.encode(), b"reply-address", hashlib.sha256).digest()


def _key(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: bytes | str, payload: bytes) -> bytes:
    return hmac.new(_key(secret), payload, hashlib.sha256).digest()[:MAC_BYTES]


def reply_address(
    thread_id: int,
    recipient_role: str,
    recipient_id: str,
    *,
    secret: bytes | str,
    domain: str,
    now: datetime,
    days: int,
) -> str:
    """`reply+<token>@<domain>`: replies to it reach `thread_id` as `recipient_id` until `days`
    from `now` (rounded up to the hour). ValueError for a role, thread or id it can't carry."""
    if recipient_role not in ROLES:
        raise ValueError(f"recipient_role {recipient_role!r} is not one of {', '.join(ROLES)}")
    if not 0 <= thread_id < 2**32:
        raise ValueError(f"thread_id {thread_id} does not fit in 4 bytes")
    if _LOWER_HEX.fullmatch(recipient_id):
        flags, packed = HEX_ID, bytes.fromhex(recipient_id)
    else:
        flags, packed = 0, recipient_id.encode()
    if not packed or len(packed) > MAX_ID_BYTES:
        raise ValueError(
            f"recipient_id {recipient_id!r} does not fit in a reply address: 1 to "
            f"{MAX_ID_BYTES} bytes (or {2 * MAX_ID_BYTES} lower-case hex digits)"
        )
    expiry = math.ceil((now.timestamp() + days * 86400) / 3600)
    payload = (
        bytes([ROLES.index(recipient_role) << 6 | flags | VERSION])
        + thread_id.to_bytes(4, "big")
        + expiry.to_bytes(3, "big")
        + packed
    )
    token = base64.b32encode(payload + _mac(secret, payload)).decode().rstrip("=").lower()
    return f"{PREFIX}{token}@{domain.lower()}"


def read_reply_address(address: str, *, secret: bytes | str, domain: str, now: datetime) -> ReplyTo:
    """Whom `address` (an addr-spec, or `Name <addr-spec>`) was made for; ReplyRefused "not
    ours" (another domain, not a reply address), "forged" or "expired". Case does not matter."""
    spec = (parseaddr(address)[1] or address).strip().lower()
    local, at, where = spec.rpartition("@")
    if not at or where.rstrip(".") != domain.lower().rstrip(".") or not local.startswith(PREFIX):
        raise ReplyRefused("not ours", spec)
    token = local.removeprefix(PREFIX)
    if not _BASE32.fullmatch(token) or len(token) > MAX_TOKEN_CHARS:
        raise ReplyRefused("forged")
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except binascii.Error:
        raise ReplyRefused("forged") from None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(payload) <= FIXED_BYTES or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise ReplyRefused("forged")
    flags, role = payload[0], payload[0] >> 6
    if flags & 0x1F != VERSION or role >= len(ROLES):
        raise ReplyRefused("forged")  # signed by us, in a format this code does not read
    expiry = int.from_bytes(payload[5:8], "big") * 3600
    if now.timestamp() >= expiry:
        raise ReplyRefused("expired")
    packed = payload[FIXED_BYTES:]
    try:
        recipient_id = packed.hex() if flags & HEX_ID else packed.decode()
    except UnicodeDecodeError:
        raise ReplyRefused("forged") from None
    return ReplyTo(int.from_bytes(payload[1:5], "big"), ROLES[role], recipient_id)


# --- the inbound webhook's signature ----------------------------------------------------------


def sign_inbound(body: bytes, secret: str, now: int) -> str:
    """The X-Inbound-Signature of `body` at `now` (Unix seconds): `t=<now>,v1=<hex HMAC-SHA256
    of "<now>." + body>`, as Stripe signs its webhooks."""
    mac = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={now},v1={mac}"


def verify_inbound(
    body: bytes,
    header: str | None,
    secret: str,
    now: int,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> None:
    """ReplyRefused "unsigned", "bad signature" or "stale signature" unless `header` signs
    `body` with `secret` within `tolerance` seconds of `now` (any of several v1 values may)."""
    if not header:
        raise ReplyRefused("unsigned")
    stamp, given = None, []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            stamp = int(value)
        elif name == "v1":
            given.append(value.strip().lower())
    if stamp is None or not given:
        raise ReplyRefused("bad signature", "expected t=<unix seconds>,v1=<hex>")
    expected = sign_inbound(body, secret, stamp).rpartition("v1=")[2]
    # Every candidate is compared, so the time taken says nothing of which one was close.
    matched = [hmac.compare_digest(value.encode(), expected.encode()) for value in given]
    if not any(matched):
        raise ReplyRefused("bad signature")
    if abs(now - stamp) > tolerance:
        raise ReplyRefused("stale signature")


# --- the message --------------------------------------------------------------------------------

# Headers naming where a message went: those the sender wrote, and those the receiving mail
# system adds from the envelope (a Bcc, or a list, leaves no trace in To and Cc).
RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
# RFC 3834 and what mail systems write in its place: an out-of-office, a vacation notice, a
# bounce or a read receipt is never a reply of a person's.
AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
AUTOMATIC_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Failed-Recipients")
DAEMONS = frozenset({"mailer-daemon", "postmaster"})
# The languages whose "On ... wrote:" lines, header blocks and sign-offs are recognised
# (mail-parser-reply's; `david` is a mail product's format, not a language).
LANGUAGES = [name for name in MAIL_LANGUAGES if name != "david"]


@dataclass(frozen=True)
class Inbound:
    """A received email as far as posting it goes."""

    from_address: str  # the sender's addr-spec, lower case
    to_addresses: tuple[str, ...]  # every recipient it names (RECIPIENT_HEADERS), lower case
    subject: str
    text: str  # the new text of the reply alone
    message_id: str | None
    auto_submitted: bool  # an automatic reply or a bounce: never posted


@dataclass(frozen=True)
class Reply:
    """A reply to post: into `to.thread_id`, as `to.recipient_id` (once the caller has matched
    `message.from_address` with that person's email)."""

    to: ReplyTo
    message: Inbound


def _addresses(message: MIMEPart, *names: str) -> list[str]:
    found: list[str] = []
    for name in names:
        values = [str(value) for value in message.get_all(name, [])]
        for _, spec in getaddresses(values):
            spec = spec.strip().lower()
            if "@" in spec and spec not in found:
                found.append(spec)
    return found


def _automatic(message: MIMEPart, sender: str) -> bool:
    auto = str(message.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if auto and auto != "no":
        return True
    if any(name in message for name in AUTOMATIC_HEADERS):
        return True
    if str(message.get("Precedence", "")).strip().lower() in AUTOMATIC_PRECEDENCE:
        return True
    if message.get_content_type() == "multipart/report":  # delivery and read reports
        return True
    if str(message.get("Return-Path", "")).strip() == "<>":  # the null sender of bounces
        return True
    return sender.partition("@")[0] in DAEMONS


def _content(part: MIMEPart) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError):  # an unknown or lying charset
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space goes on in the next (quoted lines are
    left alone: they are dropped anyway)."""
    out: list[str] = []
    joining = False
    for line in text.split("\n"):
        if joining and out and not line.startswith(">"):
            out[-1] += line
        else:
            out.append(line)
        joining = line.endswith(" ") and line != "-- " and not line.startswith(">")
        if joining and delsp:
            out[-1] = out[-1][:-1]
    return "\n".join(out)


class _HtmlText(HTMLParser):
    """HTML as the plain text a mail client would show; a blockquote's lines quoted with "> "
    (so they go with the rest of the quote), scripts and styles dropped."""

    BLOCKS = frozenset(
        {"p", "div", "tr", "li", "ul", "ol", "table", "pre", "hr", "section", "article"}
        | {"h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "address", "header", "footer"}
    )
    HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quoted = 0
        self.hidden = 0
        self.pre = 0

    def _break(self) -> None:
        self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self._break()
        elif tag in self.BLOCKS:
            self._break()
            self.quoted += tag == "blockquote"
            self.pre += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.quoted = max(0, self.quoted - (tag == "blockquote"))
            self.pre = max(0, self.pre - (tag == "pre"))
            self._break()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        chunks = data.split("\n") if self.pre else [re.sub(r"\s+", " ", data)]
        for n, chunk in enumerate(chunks):
            if n:
                self._break()
            if not self.lines[-1] and self.quoted:
                self.lines[-1] = "> " * self.quoted
                chunk = chunk.lstrip()
            self.lines[-1] += chunk

    def text(self) -> str:
        return "\n".join(line.strip() for line in self.lines)


def html_text(html: str) -> str:
    """The text of an HTML body (for a reply sent as HTML alone)."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


def _alternatives(key: str) -> str:
    words: list[str] = []
    for language in LANGUAGES:
        found = MAIL_LANGUAGES[language].get(key, [])
        words += found if isinstance(found, list) else [found]
    return "|".join(f"(?:{word})" for word in words if word)


_SENT_FROM = re.compile(rf"^(?:{_alternatives('sent_from')})", re.IGNORECASE)
# A sign-off ("Thanks," "Best regards"), and what follows it on its line.
_SIGN_OFF = re.compile(rf"^(?:{_alternatives('signatures')})[\s,.!]*(?P<rest>.*)$", re.IGNORECASE)
# A signature is a few lines: a "sign-off" with more under it is likely the letter going on.
SIGNATURE_LINES = 6
# The new text of a reply comes first; beyond this, a body is the quoted thread (or more than
# anyone writes in a message), and reading it would only cost time.
MAX_TEXT_CHARS = 64 * 1024


def _signs_off(line: str, first: bool, below: int) -> bool:
    """Whether a signature starts at `line`, with `below` non-empty lines from it to the end."""
    if re.fullmatch(r"--|__|[-_]{32,}", line):  # "-- " (RFC 3676), or an Outlook rule
        return True
    if below > SIGNATURE_LINES:
        return False
    if _SENT_FROM.match(line):
        return len(line.split()) <= 8
    sign_off = None if first else _SIGN_OFF.match(line)
    if sign_off is None:
        return False
    # Alone on its line, or followed by a name ("Best, Sam Lee"), not by a sentence ("Thanks,
    # see you Monday").
    name = sign_off["rest"].rstrip(".!").split()
    return len(name) <= 3 and all(
        word[0].isupper() and re.fullmatch(r"[^\W\d_][\w.'-]*", word) for word in name
    )


def reply_text(text: str) -> str:
    """The new text of a reply's plain-text body: without the quoted message ("On ... wrote:"
    and what follows, an Outlook "From: ... Sent: ..." block and what follows, "> " lines) or
    the signature ("-- " and what follows, "Sent from my ...", a sign-off and a few lines under
    it). A sign-off followed by more than a signature's worth of lines is kept: losing a
    sentence is worse than keeping a "Thanks,". Only the first MAX_TEXT_CHARS are read."""
    text = text[:MAX_TEXT_CHARS]
    parsed = ParsedReply(text=text, languages=list(LANGUAGES), keep_hyphen_lists=True).read()
    first = parsed.replies[0] if parsed.replies else None
    if first is None or first.headers:  # nothing above the quoted message
        return ""
    lines = [line.strip() for line in first.full_body.split("\n") if not line.startswith(">")]
    below = 0
    counts = []  # non-empty lines from each line to the end
    for line in reversed(lines):
        below += bool(line)
        counts.append(below)
    counts.reverse()
    for n, line in enumerate(lines):
        if line and _signs_off(line, n == 0, counts[n]):
            lines = lines[:n]
            break
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _received(raw: bytes, max_bytes: int) -> tuple[EmailMessage, str]:
    """The parsed message and its sender; ReplyRefused "too large" or "no sender"."""
    if len(raw) > max_bytes:
        raise ReplyRefused("too large", f"{len(raw)} bytes, at most {max_bytes}")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default's message class
    senders = _addresses(message, "From")
    if not senders:
        raise ReplyRefused("no sender")
    return message, senders[0]


def _new_text(message: EmailMessage) -> str:
    """The new text of the text/plain body, else of the HTML one; ReplyRefused "empty"."""
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is None:
            continue
        content = _content(part).replace("\r\n", "\n")
        if kind == "html":
            # Markup and the quoted thread make HTML longer than its text: enough is read.
            content = html_text(content[: 4 * MAX_TEXT_CHARS])
        elif part.get_param("format", "").lower() == "flowed":  # type: ignore[union-attr]
            content = _unflow(content, str(part.get_param("delsp", "")).lower() == "yes")
        if text := reply_text(content):
            return text
    raise ReplyRefused("empty")


def _inbound(message: EmailMessage, sender: str, text: str) -> Inbound:
    return Inbound(
        from_address=sender,
        to_addresses=tuple(_addresses(message, *RECIPIENT_HEADERS)),
        subject=str(message.get("Subject", "")).strip(),
        text=text,
        message_id=str(message.get("Message-ID", "")).strip() or None,
        auto_submitted=_automatic(message, sender),
    )


def parse_inbound(raw: bytes, max_bytes: int) -> Inbound:
    """A received email (`raw`, the whole MIME message): its sender, recipients, subject and the
    new text of its body (the text/plain part, else the HTML part as text; `reply_text`).
    Attachments, and inline images, are ignored: only text is posted. ReplyRefused "too large"
    over `max_bytes`, "no sender" without a From address, "empty" when no new text is left.
    CPU-bound for a large message (a tenth of a second or so): call it off the event loop."""
    message, sender = _received(raw, max_bytes)
    return _inbound(message, sender, _new_text(message))


def find_reply_to(
    addresses: tuple[str, ...] | list[str], *, secret: bytes | str, domain: str, now: datetime
) -> ReplyTo:
    """The first of `addresses` that is a good reply address; otherwise ReplyRefused: why the
    first one at `domain` was refused ("forged", "expired"), or "not ours" if none is there."""
    refused: ReplyRefused | None = None
    for address in addresses:
        try:
            return read_reply_address(address, secret=secret, domain=domain, now=now)
        except ReplyRefused as err:
            if refused is None or refused.reason == "not ours":
                refused = err
    raise refused or ReplyRefused("not ours")


def read_reply(
    raw: bytes, *, secret: bytes | str, domain: str, now: datetime, max_bytes: int
) -> Reply:
    """A received email as a reply to post: `parse_inbound`'s, with `find_reply_to` over its
    recipients. Refused, cheapest check first: "too large", "no sender", "automatic" (an
    automatic reply or a bounce), the reply address's "not ours", "forged" or "expired", then
    "empty" (so no body is read for a message that is not a reply). Off the event loop too."""
    message, sender = _received(raw, max_bytes)
    if _automatic(message, sender):
        raise ReplyRefused("automatic")
    addresses = _addresses(message, *RECIPIENT_HEADERS)
    to = find_reply_to(addresses, secret=secret, domain=domain, now=now)
    return Reply(to=to, message=_inbound(message, sender, _new_text(message)))
