"""New messages, told by email: the outbox relay's first step on every pass.

`core.conversations.due_emails` finds the people whose email is due (at most one per thread in
each quiet period, listing what arrived since the last); each is rendered and queued in the
outbox in the same transaction that records it as sent to the outbox, so it is queued exactly
once, and delivered by the relay like every other email. Its Reply-To is the person's signed
address for the thread: replying posts into it (`api.routers.inbound`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import sessionmaker

from core import conversations, zones
from core.conversations import DueEmail, Reader
from core.db import utcnow
from core.emails import Templates, row_context
from core.formats import when
from core.images import megabytes

# How each preference reads in the email's last line.
HOW = {"immediate": "as they arrive", "digest": "in a daily digest"}

ReplyAddress = Callable[[int, Reader, datetime], str]


class MessageEmails:
    def __init__(
        self,
        sessions: sessionmaker,
        templates: Templates,
        public_base_url: str,
        quiet: timedelta,
        reply_address: ReplyAddress,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.templates = templates
        self.base = public_base_url.rstrip("/")
        self.quiet = quiet
        self.reply_address = reply_address
        self.clock = clock

    def queue_due(self) -> int:
        """Queue every email due now; how many."""
        now = self.clock()
        with self.sessions.begin() as db:
            due = conversations.due_emails(db, now, self.quiet)
            for email in due:
                rendered = self.templates.render("messages", self._context(email))
                conversations.queue(
                    db,
                    email,
                    rendered.subject,
                    rendered.text,
                    rendered.html,
                    self.reply_address(email.thread.id, email.reader, now),
                )
        return len(due)

    def _context(self, email: DueEmail) -> dict[str, object]:
        row = email.internship
        thread_url = f"{self.base}/internships/{row.id}/threads/{email.thread.launcher_id}"
        zone = zones.zone(email.time_zone)
        return {
            "recipient": {"name": email.name, "role": email.reader.role},
            "internship": row_context(row, self.base, zone),
            "event": {"kind": "messages", "actor": "", "at": when(self.clock(), zone), "by": ""},
            "details": {
                "count": len(email.messages) + email.more,
                "more": email.more,
                "messages": [
                    {
                        "author": m.author_name,
                        "at": when(m.created_at, zone),
                        "body": m.body or "(files only)",
                        "files": ", ".join(f"{f.filename} ({megabytes(f.size)})" for f in m.files),
                    }
                    for m in email.messages
                ],
                "thread_url": thread_url,
                "settings_url": f"{self.base}/settings",
                "how": HOW.get(email.preference, HOW["immediate"]),
            },
        }
