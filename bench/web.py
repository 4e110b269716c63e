"""The pages under load of data: the employer dashboard and one internship's page, signed in as
an employer with 1,000 internships in the database (`memory.py` opens them).

Signing in goes through the real one-time-link flow, with the link's row written straight into
the database (the bench reads no inbox): GET the link's page, POST its button.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import statistics
import time
from datetime import timedelta

from sqlalchemy import select

from bench.stack import Service
from core.db import Internship, SignInLink, make_sessions, utcnow

SAMPLES = 40
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(svc: Service, role: str, account_id: str) -> str:
    """Leave `svc.http` holding a signed-in session cookie; returns one of the account's
    internships."""
    token = secrets.token_urlsafe(32)
    sessions = make_sessions(svc.database_url)
    with sessions.begin() as db:
        internship_id = db.scalar(
            select(Internship.id).where(Internship.employer_id == account_id).limit(1)
        )
        db.add(
            SignInLink(
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                role=role,
                account_id=account_id,
                next_path="/dashboard",
                expires_at=utcnow() + timedelta(minutes=15),
            )
        )
    sessions.kw["bind"].dispose()
    page = await svc.http.get(f"/sign-in/{token}")
    found = CSRF.search(page.text)
    if page.status_code != 200 or not found:
        raise RuntimeError(f"sign-in page: {page.status_code}")
    signed = await svc.http.post(f"/sign-in/{token}", data={"csrf_token": found.group(1)})
    if signed.status_code != 303 or internship_id is None:
        raise RuntimeError(f"sign-in: {signed.status_code}, internship {internship_id}")
    return internship_id


async def p50_ms(svc: Service, path: str) -> float:
    seconds = []
    for n in range(SAMPLES + 3):  # the first three warm up
        began = time.perf_counter()
        response = await svc.http.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
        if n >= 3:
            seconds.append(time.perf_counter() - began)
    return statistics.median(seconds) * 1000


async def measure(svc: Service, employer_id: str) -> dict[str, object]:
    internship_id = await sign_in(svc, "employer", employer_id)
    dashboard = await p50_ms(svc, "/dashboard")
    internship = await p50_ms(svc, f"/internships/{internship_id}")
    baseline = await p50_ms(svc, "/static/app.css")  # the same server answering a static file
    svc.http.cookies.clear()
    return {
        "web_p50_ms": round(max(dashboard, internship), 2),
        "web_p50_ms_dashboard": round(dashboard, 2),
        "web_p50_ms_internship": round(internship, 2),
        "web_p50_ratio": round(max(dashboard, internship) / baseline, 2),
    }
