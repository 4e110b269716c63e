"""A stand-in for `api.service.workflows.InternshipWorkflows`: internships held in memory.

It answers as the workflow would where the surface is concerned: a read returns the state it
holds; an update asks the rulebook first, as the workflow's validators do, and refuses the same
way (`Refused` with the rulebook's kind and details); an accepted update is recorded and
answers with the state a test gave for it (`then`), or the same state, as its caller may read
it. What the workflow itself does with an update is tested on the real workflow (tests/unit,
tests/stack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.service.workflows import AlreadyStarted, InternshipWorkflows, NoSuchRun, Refused, Update
from core import errors, rulebook, terms
from core.internship import Action, Actor, DisputeMessage, InternshipState, Posting, Stage

# The update each action runs, by the name of the workflow's update method.
UPDATE_ACTIONS = {
    "apply": Action.APPLY,
    "select": Action.SELECT,
    "kickoff": Action.KICKOFF,
    "submit": Action.SUBMIT,
    "review": Action.REVIEW,
    "extend": Action.EXTEND,
    "cancel": Action.CANCEL,
    "withdraw": Action.WITHDRAW,
    "open_dispute": Action.DISPUTE,
    "resolve": Action.RESOLVE,
    "feedback": Action.FEEDBACK,
    "invite": Action.INVITE,
    "decline": Action.DECLINE,
}


@dataclass
class Asked:
    """One call that reached the stand-in."""

    what: str  # "start", an update's name ("kickoff"), or a signal's
    internship_id: str
    request: Any = None
    update_id: str | None = None


@dataclass
class FakeWorkflows(InternshipWorkflows):
    states: dict[str, InternshipState] = field(default_factory=dict)
    asked: list[Asked] = field(default_factory=list)
    # The state an accepted update leaves, per internship (else it stays as it was).
    then: dict[str, InternshipState] = field(default_factory=dict)
    # Where the workflow goes by itself after an update (a payout landing), one step per read.
    by_itself: dict[str, list[InternshipState]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)  # runs that take no more updates
    seen_update_ids: dict[str, InternshipState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task_queue = "surface"

    def updates(self, internship_id: str) -> list[Asked]:
        return [a for a in self.asked if a.internship_id == internship_id and a.what != "start"]

    async def start(self, posting: Posting) -> None:
        self.asked.append(Asked("start", posting.internship_id, posting))
        if posting.internship_id in self.states:
            raise AlreadyStarted(posting.internship_id)
        self.states[posting.internship_id] = InternshipState(  # as a run started now is
            posting=posting,
            stage=Stage.POSTED,
            posted_at=datetime.now(UTC),
            delivered_work_kept=True,
        )

    async def state(self, internship_id: str) -> InternshipState:
        if internship_id not in self.states:
            raise NoSuchRun(internship_id)
        if self.updates(internship_id) and (steps := self.by_itself.get(internship_id)):
            self.states[internship_id] = steps.pop(0)
        return self.states[internship_id]

    async def update(
        self, internship_id: str, update: Update, request: Any, update_id: str | None
    ) -> InternshipState:
        if internship_id not in self.states or internship_id in self.finished:
            raise NoSuchRun(internship_id)
        if update_id is not None and update_id in self.seen_update_ids:
            return self.seen_update_ids[update_id]  # Temporal runs an update id once
        name = update.__name__  # type: ignore[attr-defined]
        state = self.states[internship_id]
        by: Actor = request.by
        refused = rulebook.refusal(UPDATE_ACTIONS[name], state, by)
        # The invite validator's own check, after the rulebook's, as in the workflow.
        invited_already = name == "invite" and rulebook.invitation_refusal(
            state, request.launcher_id
        )
        if refused is None and invited_already:
            refused = rulebook.Refusal(errors.CONFLICT, invited_already)
        # The apply and kickoff validators' check of the terms accepted, after the rulebook's.
        if refused is None and name in ("apply", "kickoff"):
            refused = terms.acceptance_refusal(state, request.accepted_terms)
        if refused is not None:
            raise Refused(
                refused.kind, refused.message, rulebook.refusal_details(refused, state, by)
            )
        self.asked.append(Asked(name, internship_id, request, update_id))
        after = self.then.pop(internship_id, state)
        self.states[internship_id] = after
        answer = rulebook.as_seen_by(after, by)
        if update_id is not None:
            self.seen_update_ids[update_id] = answer
        return answer

    async def retry_payment(self, internship_id: str, by: Actor) -> None:
        await self._signalled("retry_payment", internship_id, by)

    async def payout_account_ready(self, internship_id: str) -> None:
        await self._signalled("payout_account_ready", internship_id, None)

    async def message_in_dispute(self, internship_id: str, by: Actor, message_id: int) -> None:
        await self._signalled("message_in_dispute", internship_id, DisputeMessage(by, message_id))

    async def _signalled(self, what: str, internship_id: str, request: Any) -> None:
        if internship_id not in self.states or internship_id in self.finished:
            raise NoSuchRun(internship_id)
        self.asked.append(Asked(what, internship_id, request))

    async def reachable(self) -> None:
        return None
