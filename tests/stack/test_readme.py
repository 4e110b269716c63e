"""The README's walkthrough, run as written (only the API address changes) against a real worker."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from dev.smtp_sink import file_name
from tests.conftest import Api, Inbox, unique_email

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("## Walkthrough") : text.index("### Watch the timers")]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the README lost its walkthrough"
    return match.group(1)


async def mirror(inbox: Inbox, folder: Path) -> None:
    """Keep every email the inbox receives as a file, as `make run`'s SMTP sink does."""
    written = 0
    while True:
        for message in inbox.messages[written:]:
            written += 1
            name = file_name(written, str(message["Subject"]))
            (folder / name).write_bytes(message.as_bytes())
        await asyncio.sleep(0.05)


async def test_readme_walkthrough_reaches_completed(api: Api, inbox: Inbox, tmp_path: Path) -> None:
    script = walkthrough()
    assert "API=http://127.0.0.1:8000" in script and "--dir data/mail" in script
    script = script.replace("API=http://127.0.0.1:8000", f"API={api.url}")
    # Its own addresses: the walkthrough signs up fixed ones, which other tests may hold.
    for address in ("ada@acme.example.com", "lin@uni.example.com"):
        script = script.replace(address, unique_email(address.split("@")[0]))
    copying = asyncio.create_task(mirror(inbox, tmp_path))
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script.replace("--dir data/mail", f"--dir {tmp_path}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=README.parent,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"no end in 90 s:\n{out.decode()}\n{err.decode()}") from None
    finally:
        copying.cancel()
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[:2] == ["posted", "matched"]
    assert lines[3:5] == ["in_review", "approved"]
    assert "'paid_to_launcher_cents': 36000" in lines[5]
    assert lines[6:8] == ["paid", "completed"]
    assert '"rating":5' in lines[8]
