"""Happy-path internships driven the way people drive them, and what their histories show.

A lifecycle is: post, then the transitions apply, select, kickoff, submit, approve, (the payout
lands on its own: wait for `paid`), the employer's rating, the launcher's rating (`completed`).
`ApiDriver` makes each an HTTP request to `python -m api`; `bench.baseline.BareDriver` makes each
a bare `execute_update`. `drive` runs many at once and times every transition.

Billable actions follow Temporal Cloud's rules as far as a history shows them
(docs.temporal.io/cloud/actions): workflow start, each accepted update, timer, search-attribute
upsert (but not the SDK's own TemporalChangeVersion upsert that `workflow.patched` makes), activity
(and each retry); all local activities of one workflow task count as one.
Queries are billed too but leave no event (the API reads one internship with a query).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from bench.baseline import BARE_QUEUE, BareDriver
from core.internship import workflow_id
from dev.harness import code_in_maildir, eventually

TRANSITIONS = (
    "apply",
    "select",
    "kickoff",
    "submit",
    "approve",
    "rate_by_employer",
    "rate_by_launcher",
)
POLL_SECONDS = 0.05  # how often a driver asks whether the payout has landed

POSTING = {
    "title": "Bench article",
    "description": "1,200 words on remote onboarding.",
    "category": "marketing",
    "skills": ["writing"],
    "estimated_hours": 10,
    "fee_cents": 40000,
    "currency": "usd",
    "duration_days": 7,
}


class Driver(Protocol):
    workflow_id: str
    stage: str  # as the last transition answered

    async def start(self) -> None: ...

    async def transition(self, name: str) -> None: ...

    async def stage_now(self) -> str: ...


NewDriver = Callable[[int, "Run"], Driver]  # (client number, run) -> one lifecycle's driver


class LifecycleFailed(Exception):
    pass


# ---------------------------------------------------------------- accounts and the API driver


@dataclass(frozen=True)
class Pair:
    """An employer and a launcher with payouts enabled, signed up through the API."""

    employer_id: str
    employer_token: str
    launcher_id: str
    launcher_token: str


async def sign_up(http: httpx.AsyncClient, mail: Path, count: int) -> list[Pair]:
    """Through the API, as a client does: the codes are read from the SMTP sink's files."""

    async def one(gate: asyncio.Semaphore) -> Pair:
        tag = uuid.uuid4().hex[:12]
        async with gate:
            employer = await _created(
                http,
                mail,
                "/v1/employers",
                name="Bench Employer",
                email=f"employer-{tag}@bench.example.com",
                company="Acme",
            )
            card = await http.put(
                "/v1/employers/me/payment_method",
                json={"payment_method": "pm_card_visa"},
                headers={"Authorization": f"Bearer {employer['api_token']}"},
            )
            if card.status_code != 200:
                raise LifecycleFailed(f"card: {card.status_code} {card.text[:300]}")
            launcher = await _created(
                http,
                mail,
                "/v1/launchers",
                name="Bench Launcher",
                email=f"launcher-{tag}@bench.example.com",
                skills=["writing"],
            )
            onboarded = await http.post(launcher["onboarding_url"])  # the hosted page's button
            if onboarded.status_code not in (200, 303):
                raise LifecycleFailed(f"onboarding: {onboarded.status_code}")
        return Pair(employer["id"], employer["api_token"], launcher["id"], launcher["api_token"])

    gate = asyncio.Semaphore(10)
    return list(await asyncio.gather(*(one(gate) for _ in range(count))))


async def _created(http: httpx.AsyncClient, mail: Path, path: str, **body: Any) -> dict[str, Any]:
    asked = await http.post(path, json=body)
    if asked.status_code != 202:
        raise LifecycleFailed(f"sign-up {path}: {asked.status_code} {asked.text[:300]}")
    code = await code_in_maildir(mail, body["email"])
    response = await http.post("/v1/tokens", json={"code": code})
    if response.status_code != 201:
        raise LifecycleFailed(f"code {path}: {response.status_code} {response.text[:300]}")
    created: dict[str, Any] = response.json()
    return created


class ApiDriver:
    """One internship through the HTTP API. A 5xx (or 429) is counted and retried after its
    Retry-After, as a client should; any other refusal fails the lifecycle."""

    RETRIES = 30

    def __init__(self, http: httpx.AsyncClient, pair: Pair, statuses: Counter[int]) -> None:
        self.http = http
        self.pair = pair
        self.statuses = statuses
        self.id = ""
        self.workflow_id = ""
        self.stage = ""
        self.accept: dict[str, Any] = {}

    async def start(self) -> None:
        posted = await self._call("POST", "/v1/internships", self.pair.employer_token, POSTING)
        self.id = posted["id"]
        self.workflow_id = workflow_id(self.id)
        # Both sides accept the terms the posting answered with, as a client that read them.
        self.accept = {"accept_terms": True, "terms_hash": posted["terms"]["hash"]}

    async def transition(self, name: str) -> None:
        p = self.pair
        employer, launcher = p.employer_token, p.launcher_token
        action, token, body = {
            "apply": ("applications", launcher, {"pitch": "I write every week.", **self.accept}),
            "select": ("selection", employer, {"launcher_id": p.launcher_id}),
            "kickoff": ("kickoff", employer, self.accept),
            "submit": ("submissions", launcher, {"url": "https://docs.example.com/a", "note": ""}),
            "approve": ("review", employer, {"decision": "approve", "feedback": "Great"}),
            "rate_by_employer": ("feedback", employer, {"rating": 5, "comment": "On time"}),
            "rate_by_launcher": ("feedback", launcher, {"rating": 5, "comment": "Clear"}),
        }[name]
        answer = await self._call("POST", f"/v1/internships/{self.id}/{action}", token, body)
        self.stage = answer["stage"]

    async def stage_now(self) -> str:
        detail = await self._call("GET", f"/v1/internships/{self.id}", self.pair.employer_token)
        return str(detail["stage"])

    async def _call(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(self.RETRIES):
            try:
                response = await self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as err:
                self.statuses[-1] += 1  # no answer at all: counted apart from the 5xx
                raise LifecycleFailed(f"{method} {path}: {err!r}") from err
            self.statuses[response.status_code] += 1
            if response.status_code < 300:
                answer: dict[str, Any] = response.json()
                return answer
            if response.status_code < 500 and response.status_code != 429:
                raise LifecycleFailed(
                    f"{method} {path}: {response.status_code} {response.text[:300]}"
                )
            await asyncio.sleep(min(float(response.headers.get("retry-after", 0.1)), 1.0))
        raise LifecycleFailed(f"{method} {path}: still failing after {self.RETRIES} tries")


# ---------------------------------------------------------------- many lifecycles at once


@dataclass
class Run:
    """What `drive` saw: every transition's latency, every HTTP status, the workflows."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    workflow_ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    completed: int = 0
    seconds: float = 0.0
    polls: int = 0  # reads of the stage while waiting for the payout (each a workflow query)

    @property
    def rate(self) -> float:
        """Completed lifecycles per second."""
        return self.completed / self.seconds

    @property
    def errors_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def percentile(self, q: float) -> float:
        """Nearest rank, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def lifecycle(driver: Driver, run: Run) -> None:
    await driver.start()
    run.workflow_ids.append(driver.workflow_id)
    for name in TRANSITIONS:
        if name == "rate_by_employer":

            async def paid() -> bool:
                run.polls += 1
                return await driver.stage_now() == "paid"

            await eventually(paid, within=60, every=POLL_SECONDS)
        began = time.perf_counter()
        await driver.transition(name)
        run.latencies.append(time.perf_counter() - began)
    if driver.stage != "completed":
        raise LifecycleFailed(f"{driver.workflow_id} ended {driver.stage}, not completed")
    run.completed += 1


async def drive(clients: int, each: int, new_driver: NewDriver) -> Run:
    """`clients` concurrent clients, each running `each` lifecycles one after the other;
    `new_driver(client_number, run)` makes each lifecycle's driver."""
    run = Run()

    async def client(number: int) -> None:
        for _ in range(each):
            try:
                await lifecycle(new_driver(number, run), run)
            except (LifecycleFailed, TimeoutError) as err:
                run.failures.append(repr(err))

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    run.seconds = time.perf_counter() - began
    return run


def drivers(bare: Client, api: httpx.AsyncClient, pairs: list[Pair]) -> tuple[NewDriver, NewDriver]:
    """The baseline's and the API's: client number n drives as pairs[n]."""

    def bare_driver(number: int, run: Run) -> Driver:
        return BareDriver(bare, BARE_QUEUE)

    def api_driver(number: int, run: Run) -> Driver:
        return ApiDriver(api, pairs[number], run.statuses)

    return bare_driver, api_driver


# ---------------------------------------------------------------- what histories show


def billable_actions(history: WorkflowHistory) -> int:
    actions, local_tasks, task_has_local = 0, 0, False
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind in (
            "workflow_execution_started_event_attributes",
            "workflow_execution_update_accepted_event_attributes",
            "timer_started_event_attributes",
            "activity_task_scheduled_event_attributes",
        ):
            actions += 1
        elif kind == "upsert_workflow_search_attributes_event_attributes":
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            actions += set(fields.indexed_fields) != {"TemporalChangeVersion"}
        elif kind == "activity_task_started_event_attributes":
            actions += event.activity_task_started_event_attributes.attempt - 1  # retries
        elif kind == "marker_recorded_event_attributes":
            local = event.marker_recorded_event_attributes.marker_name == "core_local_activity"
            task_has_local = task_has_local or local
        elif kind == "workflow_task_completed_event_attributes":
            local_tasks += task_has_local
            task_has_local = False
    return actions + local_tasks + task_has_local


def shape(history: WorkflowHistory) -> str:
    """How many updates, activities and local activities a history holds."""
    kinds = Counter(event.WhichOneof("attributes") for event in history.events)
    local = sum(
        1
        for event in history.events
        if event.WhichOneof("attributes") == "marker_recorded_event_attributes"
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )
    return (
        f"updates:{kinds['workflow_execution_update_accepted_event_attributes']},"
        f"activities:{kinds['activity_task_scheduled_event_attributes']},"
        f"local_activities:{local}"
    )


def workflow_task_seconds(history: WorkflowHistory) -> list[float]:
    """How long each workflow task ran: WorkflowTaskStarted to its Completed (or Failed)."""
    spans, started = [], None
    for event in history.events:
        at = event.event_time.ToNanoseconds() / 1e9
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = at
        elif started is not None and event.event_type in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        ):
            spans.append(at - started)
            started = None
    return spans


def task_failures(history: WorkflowHistory) -> int:
    failed = (
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    )
    return sum(1 for event in history.events if event.event_type in failed)


async def histories(client: Client, workflow_ids: list[str]) -> list[WorkflowHistory]:
    gate = asyncio.Semaphore(20)

    async def one(id_: str) -> WorkflowHistory:
        async with gate:
            return await client.get_workflow_handle(id_).fetch_history()

    return list(await asyncio.gather(*(one(id_) for id_ in workflow_ids)))


# ---------------------------------------------------------------- the overdue path


async def overdue_path(
    client: Client, task_queue: str, pair: Pair, time_scale: float
) -> WorkflowHistory:
    """Kickoff, then no submission: reminder, overdue, escalation, auto-cancel and refund, with
    every policy duration divided by `time_scale`. Started and moved with the client (the
    history is the same as through the API); returns the finished history."""
    from api.service.workflows import start_internship
    from core.accounts import new_id
    from core.internship import Actor, Application, Kickoff, Posting, Role, Selection, Stage
    from core.settings import Settings
    from core.terms import terms_hash
    from workflows.internship import InternshipWorkflow

    settings = Settings(_env_file=None, time_scale=time_scale)  # type: ignore[call-arg]
    posting = Posting(
        internship_id=new_id(),
        employer_id=pair.employer_id,
        company="Acme",
        title="Bench overdue",
        description="Never submitted.",
        category="marketing",
        skills=["writing"],
        estimated_hours=10,
        fee_cents=40000,
        currency="usd",
        duration_days=7,
        policy=settings.policy(),
    )
    handle = await start_internship(client, posting, task_queue)
    employer = Actor(Role.EMPLOYER, pair.employer_id)
    launcher = Actor(Role.LAUNCHER, pair.launcher_id)
    accepted = terms_hash(posting)  # both sides accept the terms, as through the API
    await handle.execute_update(InternshipWorkflow.apply, Application(launcher, "pitch", accepted))
    await handle.execute_update(InternshipWorkflow.select, Selection(employer, pair.launcher_id))
    await handle.execute_update(InternshipWorkflow.kickoff, Kickoff(employer, accepted))
    # Due after 7 days, cancelled 10 days later: 17 scaled days, plus room for a slow machine.
    state = await asyncio.wait_for(handle.result(), timeout=17 * 86400 / time_scale + 60)
    if state.stage != Stage.REFUNDED:
        raise LifecycleFailed(f"the overdue path ended {state.stage.value}, not refunded")
    return await handle.fetch_history()
