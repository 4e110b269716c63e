"""Bounded bodies: a request over its limit is a 413 before anything reads, parses or
authenticates it, counted on the bytes that arrive (issue 14, finding 4: one 256 MiB body with a
junk token took the API from 175 to 1,069 MiB).

The requests are written on a raw socket, as an attacker would: a client library would refuse
to send a body the server has already answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource

import httpx

from tests.conftest import Api
from tests.stack.test_api import POSTING, auth, employer

MiB = 1024 * 1024


async def _send(api: Api, head: str, body_chunks: int, chunked: bool) -> tuple[int, bytes]:
    """Write the head, then up to `body_chunks` MiB of body while the server lets us; return the
    status and body of its answer."""
    url = httpx.URL(api.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(head.encode())

    async def write_body() -> None:
        piece = b"x" * MiB
        for _ in range(body_chunks):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()

    sending = asyncio.create_task(write_body())
    head_in = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    status_line, *fields = head_in.decode("latin-1").split("\r\n")
    length = next(int(f.split(":")[1]) for f in fields if f.lower().startswith("content-length"))
    body = await asyncio.wait_for(reader.readexactly(length), timeout=30)
    sending.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await sending
    writer.close()
    return int(status_line.split()[1]), body


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_a_256_mib_body_with_a_junk_token_is_413_and_memory_stays_flat(api: Api) -> None:
    before = _peak_rss_mib()
    head = (
        "POST /v1/internships HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer junk\r\n"
        "Content-Type: application/json\r\nIdempotency-Key: k1\r\n"
        f"Content-Length: {256 * MiB}\r\n\r\n"
    )
    status, body = await _send(api, head, 256, chunked=False)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "body_too_large"
    # Without a length to refuse on (chunked), the bytes are counted as they arrive.
    head = (
        "POST /v1/internships HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer junk\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    status, body = await _send(api, head, 256, chunked=True)
    assert status == 413 and b"body_too_large" in body
    # A form on a page gets a page saying what to do.
    head = (
        "POST /internships/new HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    status, body = await _send(api, head, 8, chunked=True)
    assert status == 413 and b"shorten what you wrote" in body
    assert _peak_rss_mib() - before < 64  # the API (in this process) read at most its limit


async def test_a_page_form_with_files_over_its_limit_says_to_send_smaller_files(
    api: Api,
) -> None:
    """A message's form takes one file of the largest size (and its text), not more."""
    head = (
        "POST /internships/abc/threads/def HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    status, body = await _send(api, head, 40, chunked=True)
    assert status == 413 and b"choose smaller files or fewer at once" in body


async def test_the_largest_valid_posting_fits_under_the_limit(api: Api) -> None:
    """A 10,000-character description (the schema's limit) of characters JSON escapes the
    longest way (\\ud83d\\ude00: 12 bytes each)."""
    emp = await employer(api)
    body = json.dumps({**POSTING, "description": "\U0001f600" * 10000}).encode()
    assert len(body) > 110 * 1024
    posted = await api.http.post(
        "/v1/internships",
        content=body,
        headers={**auth(emp["api_token"]), "Content-Type": "application/json"},
    )
    assert posted.status_code == 201, posted.text
