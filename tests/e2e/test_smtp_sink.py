"""`make run`'s SMTP sink (dev/smtp_sink.py), started as `make run` starts it: every email kept,
and a reply (an email to an address at REPLY_DOMAIN) also handed to the API's inbound endpoint,
signed as the mail provider's webhook signs it. The "API" is a real HTTP server of this test's,
which checks the signature as the service does (core/replies.py)."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from core.replies import (
    INBOUND_PATH,
    SIGNATURE_HEADER,
    ReplyTo,
    read_reply,
    reply_address,
    reply_secret,
    verify_inbound,
)
from core.settings import Settings
from dev.harness import ROOT, free_port
from dev.run import smtp_sink_command

SECRET = "whinbound_sink_test_secret_0123456789"
MAX = 1024 * 1024


@dataclass
class Call:
    path: str
    content_type: str
    signature: str | None
    body: bytes
    answered: int


@dataclass
class Inbound:
    """The API's inbound endpoint as far as the sink can tell: it answers 503 to the first call
    (the API restarting), 422 to a message it refuses, and 202 to the rest."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, call: Call) -> int:
        with self.lock:
            first = not self.calls
            call.answered = 503 if first else 422 if b"refuse me" in call.body else 202
            self.calls.append(call)
            return call.answered

    def wait(self, probe: Callable[[], bool], within: float = 20) -> None:
        deadline = time.monotonic() + within
        while not probe():
            assert time.monotonic() < deadline, f"calls so far: {self.calls}"
            time.sleep(0.05)


@contextmanager
def inbound_server() -> Iterator[tuple[str, Inbound]]:
    inbound = Inbound()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            call = Call(
                self.path, self.headers["Content-Type"], self.headers[SIGNATURE_HEADER], body, 0
            )
            self.send_response(inbound.answer(call))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", inbound
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def sink(settings: Settings, api: str, folder: Path) -> Iterator[list[str]]:
    """The sink as `make run` starts it, until the block ends (SIGINT, as `make run` stops it);
    yields its output lines as they come."""
    process = subprocess.Popen(
        smtp_sink_command(settings, api, folder),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=1).quit()
                break
            except OSError:
                assert process.poll() is None, "".join(lines)
                assert time.monotonic() < deadline, "the sink did not listen:\n" + "".join(lines)
                time.sleep(0.1)
        yield lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=5)


def send(settings: Settings, to: str, text: str, rcpt: str | None = None) -> None:
    mail = EmailMessage()
    mail["From"] = "Sam Lee <sam.lee@example.com>"
    mail["To"] = to
    mail["Subject"] = "Re: New message about Brand audit"
    mail["Message-ID"] = f"<{time.monotonic_ns()}@example.com>"
    mail.set_content(text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(mail, to_addrs=[rcpt or to])


def test_a_reply_reaches_the_api_signed_and_every_email_is_kept(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, smtp_port=free_port(), inbound_email_secret=SECRET
    )
    now = datetime.now(UTC)
    address = reply_address(
        7,
        "employer",
        "3f9a0c1d5e7b2a48",
        secret=reply_secret(settings),
        domain=settings.reply_domain,
        now=now,
        days=settings.reply_address_days,
    )
    folder = tmp_path / "mail"
    with inbound_server() as (api, inbound), sink(settings, api, folder) as lines:
        # An email to a person: kept, not forwarded.
        send(settings, "ada@acme.example.com", "Your posting is live.")
        # A reply, Bcc'd to the reply address (so only the envelope names it): forwarded,
        # again after the API's 503.
        send(
            settings,
            "ada@acme.example.com",
            "Monday works.\n\nOn Mon, Ada wrote:\n> Monday?",
            address,
        )
        inbound.wait(lambda: [c.answered for c in inbound.calls] == [503, 202])
        # A reply the API refuses is not sent again (it would be refused again).
        send(settings, address, "refuse me")
        inbound.wait(lambda: len(inbound.calls) == 3)
        deadline = time.monotonic() + 10
        while sum("forwarded to" in line for line in lines) < 2:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        time.sleep(1.5)  # the sink's first retry would have come by now
        assert [c.answered for c in inbound.calls] == [503, 202, 422]

    assert len(list(folder.glob("*.eml"))) == 3
    for call in inbound.calls:
        assert call.path == INBOUND_PATH
        assert call.content_type == "message/rfc822"
        verify_inbound(call.body, call.signature, SECRET, int(time.time()))
    reply = read_reply(
        inbound.calls[1].body,
        secret=reply_secret(settings),
        domain=settings.reply_domain,
        now=datetime.now(UTC),
        max_bytes=MAX,
    )
    assert reply.to == ReplyTo(7, "employer", "3f9a0c1d5e7b2a48")
    assert reply.message.text == "Monday works."
    assert reply.message.from_address == "sam.lee@example.com"
    output = "".join(lines)
    assert f"reply to {address} forwarded to {api}{INBOUND_PATH}: 202" in output
    assert f"{api}{INBOUND_PATH}: 422" in output
