"""`python -m bench.conversations`: what conversations cost people and the service (about 2 min).

    .venv/bin/python -m bench.conversations [--messages 50] [--every 0.6] [--quiet 3]

Starts the stack as `make bench` does (bench/stack.py: the real API and worker as processes,
the Temporal dev server, the local Stripe server, the SMTP sink), on SQLite, twice: files in a
folder, then in a real S3-compatible server (moto's, in this process). Prints name=value lines:

- `upload_25mb_seconds_<storage>`, `download_25mb_seconds_<storage>`: the median of 3, over
  HTTP on this machine, of a 25 MB file (the largest MAX_FILE_BYTES takes) sent by the launcher
  (`POST /v1/internships/{id}/files`) and downloaded by the employer (`GET /v1/files/{id}`);
- `busy_thread_messages`, `busy_thread_emails`: a launcher writes `--messages` messages, one
  every `--every` seconds, with MESSAGE_QUIET_MINUTES at `--quiet` seconds; the emails the
  employer got from the real relay and SMTP (at the defaults: 50 messages over 30 s with a 3 s
  quiet period, as 50 messages over 100 minutes with the 10-minute default);
- `busy_thread_emails_expected`: 1 + the quiet periods the messages span, the most the quiet
  period allows.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.lifecycle import POSTING, Pair, sign_up
from bench.stack import Service, service, sqlite_url, stack

SIZE = 25 * 1024 * 1024
# A PDF by its content (libmagic reads the header), of the largest size taken.
PDF = b"%PDF-1.4\n" + os.urandom(SIZE - 16) + b"\n%%EOF\n"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response.json() if response.headers.get("content-type", "").startswith("app") else None


async def applied(svc: Service) -> tuple[Pair, str]:
    [pair] = await sign_up(svc.http, svc.mail, 1)
    posted = await ok(
        await svc.http.post("/v1/internships", json=POSTING, headers=auth(pair.employer_token)),
        201,
    )
    await ok(
        await svc.http.post(
            f"/v1/internships/{posted['id']}/applications",
            json={"pitch": "Me", "accept_terms": True, "terms_hash": posted["terms"]["hash"]},
            headers=auth(pair.launcher_token),
        )
    )
    return pair, posted["id"]


async def files(svc: Service, storage: str) -> dict[str, float]:
    pair, iid = await applied(svc)
    ups, downs = [], []
    for _ in range(3):
        started = time.perf_counter()
        kept = await ok(
            await svc.http.post(
                f"/v1/internships/{iid}/files",
                files={"file": ("deliverable.pdf", PDF, "application/pdf")},
                headers=auth(pair.launcher_token),
            ),
            201,
        )
        ups.append(time.perf_counter() - started)
        await ok(
            await svc.http.post(
                f"/v1/internships/{iid}/threads/{pair.launcher_id}/messages",
                json={"body": "The deliverable", "files": [kept["id"]]},
                headers=auth(pair.launcher_token),
            ),
            201,
        )
        started = time.perf_counter()
        got = await svc.http.get(f"/v1/files/{kept['id']}", headers=auth(pair.employer_token))
        downs.append(time.perf_counter() - started)
        if got.status_code != 200 or got.content != PDF:
            raise RuntimeError(f"download: {got.status_code}")
    return {
        f"upload_25mb_seconds_{storage}": statistics.median(ups),
        f"download_25mb_seconds_{storage}": statistics.median(downs),
    }


async def busy_thread(svc: Service, messages: int, every: float, quiet: float) -> dict[str, float]:
    pair, iid = await applied(svc)
    me = await ok(await svc.http.get("/v1/me", headers=auth(pair.employer_token)))
    for n in range(messages):
        await ok(
            await svc.http.post(
                f"/v1/internships/{iid}/threads/{pair.launcher_id}/messages",
                json={"body": f"Update {n + 1}"},
                headers=auth(pair.launcher_token),
            ),
            201,
        )
        await asyncio.sleep(every)
    await asyncio.sleep(quiet + 3)  # the last quiet period ends, and the relay passes
    told = [
        f for f in svc.mail.glob("*.eml") if f"To: {me['email']}" in f.read_text(errors="ignore")
    ]
    told = [f for f in told if "message" in f.name.lower()]
    span = (messages - 1) * every
    return {
        "busy_thread_messages": messages,
        "busy_thread_emails": len(told),
        "busy_thread_emails_expected": 1 + math.ceil(span / quiet),
    }


def bucket(url: str) -> dict[str, str]:
    settings = {
        "FILE_STORAGE": "s3",
        "S3_ENDPOINT_URL": url,
        "S3_BUCKET": "bench-files",
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "bench",
        "S3_SECRET_ACCESS_KEY": "bench-secret-bench-secret-bench-secret",
    }
    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key=settings["S3_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket="bench-files")
    return settings


async def main(args: argparse.Namespace) -> None:
    from moto.server import ThreadedMotoServer

    from dev.harness import free_port

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto: no line per request
    folder = Path(tempfile.mkdtemp(prefix="bench-conversations-"))
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    quiet = {"MESSAGE_QUIET_MINUTES": str(args.quiet / 60)}
    found: dict[str, float] = {}
    try:
        async with stack(folder) as running:
            storages = {"folder": {}, "s3": bucket(f"http://127.0.0.1:{port}")}
            for storage, tuning in storages.items():
                url = sqlite_url(folder, f"conversations-{storage}")
                async with service(running, storage, url, {**tuning, **quiet}) as svc:
                    found |= await files(svc, storage)
                    if storage == "folder":
                        found |= await busy_thread(svc, args.messages, args.every, args.quiet)
    finally:
        moto.stop()
    for name, value in found.items():
        print(f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--every", type=float, default=0.6)
    parser.add_argument("--quiet", type=float, default=3.0)
    asyncio.run(main(parser.parse_args()))
