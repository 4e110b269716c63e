"""The README's walkthrough, run as written (only the API address changes) against a real worker."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.conftest import Api, Inbox

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("## Walkthrough") : text.index("### Watch the timers")]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the README lost its walkthrough"
    return match.group(1)


async def test_readme_walkthrough_reaches_completed(api: Api, inbox: Inbox) -> None:
    script = walkthrough()
    assert "API=http://127.0.0.1:8000" in script
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script.replace("API=http://127.0.0.1:8000", f"API={api.url}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[:2] == ["posted", "matched"]
    assert lines[3:5] == ["in_review", "approved"]
    assert "'paid_to_launcher_cents': 36000" in lines[5]
    assert lines[6:8] == ["paid", "completed"]
    assert '"rating":5' in lines[8]
