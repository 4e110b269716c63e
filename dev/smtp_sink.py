"""A local SMTP sink for development: keeps every email as a .eml file and prints a line (and
the sign-in link of a sign-in email, to open in the browser).

`python -m dev.smtp_sink --port 1025 --dir data/mail`; `--code-for EMAIL` prints the code of the
newest sign-up email to EMAIL instead (for scripts using the API).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import re
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def file_name(count: int, subject: str) -> str:
    """The file an email is kept in: its number, then its subject (so a reader can pick a kind
    of email by name, as `dev.harness.code_in_maildir` does)."""
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60]
    return f"{count:05d}-{slug}.eml"


class MailDir:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.count = len(list(folder.glob("*.eml")))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.count += 1
        path = self.folder / file_name(self.count, str(msg["Subject"]))
        path.write_bytes(envelope.content)
        print(f"mail  to {msg['To']}: {msg['Subject']}  ({path})", flush=True)
        # Signing in to the pages locally: the link is right here, no mail client needed.
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        for link in re.findall(r"https?://\S+/sign-in/\S+", text):
            print(f"      sign-in link: {link}", flush=True)
            # The same secret is the code API clients exchange at POST /v1/tokens.
            print(f"      API code: {link.rsplit('/', 1)[-1]}", flush=True)
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, folder: Path) -> None:
    controller = Controller(MailDir(folder), hostname=host, port=port)
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
    args = parser.parse_args()
    if args.code_for:
        from dev.harness import code_in_maildir

        print(asyncio.run(code_in_maildir(args.dir, args.code_for.strip().lower())))
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.host, args.port, args.dir))
