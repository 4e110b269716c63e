"""A local SMTP sink for development: keeps every email as a .eml file and prints a line (and
the sign-in link of a sign-in email, to open in the browser).

`python -m dev.smtp_sink --port 1025 --dir data/mail`; `--code-for EMAIL` prints the code of the
newest sign-up email to EMAIL instead (for scripts using the API).

With `--inbound-url URL --inbound-secret SECRET`, an email to an address at `--reply-domain` is
also POSTed to URL (the API's /v1/inbound-email) as a mail provider's inbound webhook would: the
raw message, `Content-Type: message/rfc822`, signed in X-Inbound-Signature (core/replies.py),
with an X-Original-To line per such recipient, as a receiving mail system adds. So a reply to a
message email, sent to the sink (`make run` does this), reaches its thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.parser
import email.policy
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from core.replies import INBOUND_PATH, SIGNATURE_HEADER, sign_inbound
from core.settings import Settings

REPLY_DOMAIN = str(Settings.model_fields["reply_domain"].default)
# The API may be starting (or restarting) when a reply comes: tried again after 1, 2, 4, 8 s.
FORWARD_ATTEMPTS = 5


def file_name(count: int, subject: str) -> str:
    """The file an email is kept in: its number, then its subject (so a reader can pick a kind
    of email by name, as `dev.harness.code_in_maildir` does)."""
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60]
    return f"{count:05d}-{slug}.eml"


def forward(url: str, secret: str, raw: bytes) -> str:
    """POST `raw` to `url` signed with `secret`, as an inbound webhook does; what came of it.
    Blocking (call it in a thread): tried again while the API can't be reached or answers 5xx."""
    delay = 1.0
    for attempt in range(1, FORWARD_ATTEMPTS + 1):
        request = urllib.request.Request(
            url,
            data=raw,
            method="POST",
            headers={
                "Content-Type": "message/rfc822",
                SIGNATURE_HEADER: sign_inbound(raw, secret, int(time.time())),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return f"{answer.status}"
        except urllib.error.HTTPError as err:
            said = f"{err.code} {err.read(500).decode('utf-8', 'replace')}"
            if err.code < 500:
                return said  # refused: sending it again would be refused again
        except (urllib.error.URLError, OSError) as err:
            said = f"not delivered ({err})"
        if attempt < FORWARD_ATTEMPTS:
            time.sleep(delay)
            delay *= 2
    return f"{said}; gave up after {FORWARD_ATTEMPTS} attempts"


HEADERS = email.parser.BytesHeaderParser(policy=email.policy.default)


def sign_in_links(content: bytes) -> list[str]:
    """The sign-in links in an email's text, if it has any (a part in base64 may hide one)."""
    if b"sign-in" not in content and b"base64" not in content.lower():
        return []
    msg = email.message_from_bytes(content, policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return re.findall(r"https?://\S+/sign-in/\S+", text)


class MailDir:
    """Keeps every email in `folder`; with `inbound_url` and `inbound_secret`, also forwards
    those to an address at `reply_domain` there (module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        inbound_url: str | None = None,
        inbound_secret: str | None = None,
        reply_domain: str = REPLY_DOMAIN,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.count = len(list(folder.glob("*.eml")))
        self.inbound = (inbound_url, inbound_secret) if inbound_url and inbound_secret else None
        self.reply_domain = reply_domain.lower()
        self.forwarding: set[asyncio.Task[None]] = set()  # held, so none is collected mid-way

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        # The headers alone name the file and the line: parsing the whole message (its parts,
        # their encodings) is for the few that carry a sign-in link.
        head = HEADERS.parsebytes(envelope.content)
        self.count += 1
        path = self.folder / file_name(self.count, str(head["Subject"]))
        path.write_bytes(envelope.content)
        print(f"mail  to {head['To']}: {head['Subject']}  ({path})", flush=True)
        # Signing in to the pages locally: the link is right here, no mail client needed.
        for link in sign_in_links(envelope.content):
            print(f"      sign-in link: {link}", flush=True)
            # The same secret is the code API clients exchange at POST /v1/tokens.
            print(f"      API code: {link.rsplit('/', 1)[-1]}", flush=True)
        replies = [
            rcpt
            for rcpt in envelope.rcpt_tos
            if rcpt.rpartition("@")[2].lower().rstrip(".") == self.reply_domain
        ]
        if replies and self.inbound:
            task = asyncio.create_task(self._forward(replies, envelope.content))
            self.forwarding.add(task)
            task.add_done_callback(self.forwarding.discard)
        return "250 Message accepted for delivery"

    async def _forward(self, recipients: list[str], content: bytes) -> None:
        assert self.inbound is not None
        url, secret = self.inbound
        added = "".join(f"X-Original-To: {rcpt}\r\n" for rcpt in recipients).encode()
        # Off the event loop: the sink keeps taking mail while the API answers (or is down).
        said = await asyncio.to_thread(forward, url, secret, added + content)
        print(f"      reply to {', '.join(recipients)} forwarded to {url}: {said}", flush=True)


async def serve(host: str, port: int, folder: Path, **forwarding: Any) -> None:
    """The sink on host:port until cancelled; `forwarding`: MailDir's inbound_url,
    inbound_secret and reply_domain."""
    controller = Controller(MailDir(folder, **forwarding), hostname=host, port=port)
    controller.start()
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path("data/mail"))
    parser.add_argument(
        "--code-for",
        metavar="EMAIL",
        help="don't serve: wait for the newest sign-up email to EMAIL in --dir, print its code",
    )
    parser.add_argument(
        "--inbound-url",
        metavar="URL",
        help=f"also POST emails to --reply-domain here (the API's {INBOUND_PATH}); unset: don't",
    )
    parser.add_argument("--inbound-secret", help="signs those POSTs (INBOUND_EMAIL_SECRET)")
    parser.add_argument("--reply-domain", default=REPLY_DOMAIN, help="REPLY_DOMAIN")
    args = parser.parse_args()
    if bool(args.inbound_url) != bool(args.inbound_secret):
        parser.error("--inbound-url and --inbound-secret go together")
    if args.code_for:
        from dev.harness import code_in_maildir

        print(asyncio.run(code_in_maildir(args.dir, args.code_for.strip().lower())))
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve(
                    args.host,
                    args.port,
                    args.dir,
                    inbound_url=args.inbound_url,
                    inbound_secret=args.inbound_secret,
                    reply_domain=args.reply_domain,
                )
            )
