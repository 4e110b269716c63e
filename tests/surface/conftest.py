"""The surface layer: the JSON API and the pages driven over ASGI in this process, the Temporal
calls replaced (`tests/surface/workflows.py`), on a real SQLite file. No worker, no Stripe, no
SMTP (docs/architecture.md, "6. Test layers").

`surface` gives a fresh app per test on one migrated database: accounts are written to it as
the sign-up would leave them, internships are put in the stand-in (what the workflow holds) and
in the projection (what lists and dashboards read), and a browser signs in by the emailed link,
read from the outbox table where the relay would pick it up.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from activities.projection import (
    project_deadlines,
    project_invitations,
    project_row,
    timeline_row,
)
from api.app import create_app
from core.accounts import founder_of, issue_token, new_id
from core.db import (
    Employer,
    Internship,
    InternshipSkill,
    Launcher,
    Member,
    OutboxEmail,
    make_sessions,
)
from core.internship import (
    ApplicantView,
    InternshipState,
    MemberRole,
    Posting,
    Role,
    Stage,
)
from core.settings import Settings
from dev.harness import UNLIMITED, migrate
from tests.surface.workflows import FakeWorkflows

OPS_TOKEN = "ops-surface-token"
BASE_URL = "http://127.0.0.1:8000"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/sign-in/\S+")


@pytest.fixture(scope="session")
def surface_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path_factory.mktemp('surface') / 'app.db'}",
        data_dir=str(tmp_path_factory.mktemp("surface-data")),
        ops_api_token=OPS_TOKEN,
        public_base_url=BASE_URL,
        **UNLIMITED,
    )


@pytest.fixture(scope="session")
def surface_sessions(surface_settings: Settings) -> sessionmaker:
    migrate(surface_settings.database_url)
    return make_sessions(surface_settings.database_url)


class Browser:
    """An HTTP client over ASGI that keeps its cookies and sends forms as a browser does."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def submit(self, page: str, action: str, **fields: Any) -> httpx.Response:
        """Open `page`, then post one of its forms to `action` with this session's token."""
        html = (await self.http.get(page)).text
        token = CSRF.search(html)
        assert token, f"{page} has no form"
        keys = FORM_KEY.findall(html)
        data = {"csrf_token": token.group(1), "form_key": keys[0] if keys else "", **fields}
        return await self.http.post(action, data=data)


@dataclass
class Surface:
    app: Any
    workflows: FakeWorkflows
    sessions: sessionmaker
    settings: Settings

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers
        )

    # ------------------------------------------------------------ accounts

    def employer(self, card: bool = True) -> Employer:
        e = Employer(
            id=new_id(),
            name="Erin Employer",
            email=f"erin-{uuid.uuid4().hex[:8]}@example.com",
            company="Northwind",
            stripe_customer_id=f"cus_{uuid.uuid4().hex[:14]}",
            stripe_payment_method="pm_card_visa" if card else None,
            card_label="Visa ending in 4242" if card else None,
            inbox_proven_at=datetime.now(UTC),
        )
        with self.sessions.begin() as db:
            db.add(e)
            db.flush()
            db.add(founder_of(e))
        return e

    def launcher(
        self, name: str = "Lee Launcher", skills: list[str] | None = None, **changes: Any
    ) -> Launcher:
        lc = Launcher(
            id=new_id(),
            name=name,
            email=f"lee-{uuid.uuid4().hex[:8]}@example.com",
            skills=skills or ["research"],
            stripe_account_id=f"acct_{uuid.uuid4().hex[:14]}",
            payouts_enabled=True,
            inbox_proven_at=datetime.now(UTC),
            **changes,
        )
        with self.sessions.begin() as db:
            db.add(lc)
        return lc

    def member(self, organisation: Employer, role: MemberRole, name: str = "Fay Finance") -> Member:
        """A colleague of the organisation's founder, with `role`."""
        person = Member(
            id=new_id(),
            employer_id=organisation.id,
            name=name,
            email=f"fay-{uuid.uuid4().hex[:8]}@example.com",
            role=role.value,
        )
        with self.sessions.begin() as db:
            db.add(person)
        return person

    def token(self, role: Role, account_id: str) -> str:
        return issue_token(self.sessions, role, account_id, "surface")

    async def signed_in(self, email: str) -> Browser:
        """A browser signed in by the emailed link (read from the outbox)."""
        browser = Browser(self.client())
        asked = await browser.submit("/sign-in", "/sign-in", email=email, next="/dashboard")
        assert asked.status_code == 303, asked.text  # to the "check your email" page
        sent = await browser.get(asked.headers["location"])
        assert "Check your email" in sent.text, sent.text
        with self.sessions() as db:
            body = db.scalar(
                select(OutboxEmail.text_body)
                .where(OutboxEmail.to_email == email)
                .order_by(OutboxEmail.id.desc())
            )
        assert body, f"no sign-in email to {email}"
        found = LINK.search(body)
        assert found, body
        path = httpx.URL(found.group(0)).path
        confirm = await browser.get(path)
        token = CSRF.search(confirm.text)
        assert token, confirm.text
        signed = await browser.http.post(path, data={"csrf_token": token.group(1)})
        assert signed.status_code == 303, signed.text
        return browser

    # ------------------------------------------------------------ internships

    def internship(
        self,
        employer: Employer,
        stage: Stage = Stage.POSTED,
        launcher: Launcher | None = None,
        applicants: list[Launcher] | None = None,
        posting: dict[str, Any] | None = None,
        **changes: Any,
    ) -> InternshipState:
        """An internship the workflow holds in `stage` (with `launcher` selected, `applicants`
        applied, the posting's fields changed by `posting`), projected as the worker would
        project it."""
        posted = Posting(
            internship_id=new_id(),
            employer_id=employer.id,
            company=employer.company,
            title="Market research on pet food",
            description="A 10-page summary of the market.",
            category="marketing",
            skills=["research", "writing"],
            estimated_hours=10,
            fee_cents=40000,
            currency="usd",
            duration_days=14,
            policy=self.settings.policy(),
            nonce="surface",
        )
        posted = replace(posted, **(posting or {}))
        now = datetime.now(UTC)
        people = list(applicants or []) + ([launcher] if launcher else [])
        state = InternshipState(
            posting=posted,
            stage=stage,
            posted_at=now - timedelta(days=1),
            launcher_id=launcher.id if launcher else None,
            applicants=[
                ApplicantView(
                    launcher_id=p.id, pitch=f"{p.name} pitches", applied_at=now, withdrawn=False
                )
                for p in dict.fromkeys(people)
            ],
        )
        state = replace(state, **changes)
        self.workflows.states[posted.internship_id] = state
        self.project(state)
        return state

    def project(self, state: InternshipState) -> None:
        """Projected as the worker's `record_transition` projects it."""
        p = state.posting
        with self.sessions.begin() as db:
            row = Internship(id=p.internship_id, posted_at=state.posted_at)
            project_row(row, state, state.posted_at)
            db.merge(row)
            for entry in state.timeline:
                db.merge(timeline_row(p.internship_id, entry, state.launcher_id))
            for skill in sorted(set(p.skills)):
                db.merge(InternshipSkill(internship_id=p.internship_id, skill=skill))
            db.flush()
            project_invitations(db, state)
            project_deadlines(db, state)


@pytest.fixture
async def surface(
    surface_settings: Settings, surface_sessions: sessionmaker
) -> AsyncIterator[Surface]:
    workflows = FakeWorkflows()
    app = create_app(surface_settings, workflows=workflows)
    yield Surface(app, workflows, surface_sessions, surface_settings)


@pytest.fixture
async def surface_any_storage(
    surface_settings: Settings,
    surface_sessions: sessionmaker,
    any_storage_settings: dict[str, Any],
) -> AsyncIterator[Surface]:
    """`surface` keeping files in a folder of the test's, then in a fresh bucket of the real
    S3-compatible server (tests/conftest.py; ids `folder` and `s3`): a test that asks for it
    runs once with each. The app's store is `surface.app.state.files`."""
    settings = surface_settings.model_copy(update=any_storage_settings)
    workflows = FakeWorkflows()
    app = create_app(settings, workflows=workflows)
    yield Surface(app, workflows, surface_sessions, settings)
