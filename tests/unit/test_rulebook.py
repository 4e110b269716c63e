"""The rulebook as a matrix: every stage (and its disputed variants) against every caller.

Plain functions over plain state: no Temporal, no database. The expected values are written out
in MATRIX, one row per state of the lifecycle and one cell per caller, so each can be checked
against the lifecycle table by reading it; the rulebook's own helpers are only ever the thing
under test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from core import errors, rulebook
from core.internship import (
    Action,
    Actor,
    ApplicantView,
    DisputeView,
    InternshipState,
    InvitationView,
    MemberRole,
    Rating,
    Role,
    Stage,
    SubmissionView,
    TimelineEntry,
)
from core.rulebook import Relation
from tests.unit.harness import EMPLOYER, OPS, posting

A = Action
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def member(role: MemberRole, member_id: str, own_only: bool = False) -> Actor:
    """A member of the owner's organisation (EMPLOYER's)."""
    return Actor(Role.EMPLOYER, EMPLOYER.id, member_id, role, own_only)


# The callers, by how they stand to the internship. "applicant" has an open application: while
# posted they may withdraw it; once someone else is matched they were not selected. "owner" is
# the organisation as it acted before it had members (every right); the members after it act
# as their role lets them; "poster" posted it (a hiring manager limited to their own).
CALLERS: dict[str, Actor] = {
    "ops": OPS,
    "owner": EMPLOYER,
    "admin": member(MemberRole.ADMIN, "m-admin"),
    "hiring_manager": member(MemberRole.HIRING_MANAGER, "m-hm"),
    "poster": member(MemberRole.HIRING_MANAGER, "m-poster", own_only=True),
    "colleague_own_only": member(MemberRole.HIRING_MANAGER, "m-other", own_only=True),
    "finance": member(MemberRole.FINANCE, "m-fin"),
    "viewer": member(MemberRole.VIEWER, "m-view"),
    "other_employer": Actor(Role.EMPLOYER, "emp-other", "m-x", MemberRole.ADMIN),
    "selected": Actor(Role.LAUNCHER, "lnc-sel"),  # the applicant the owner selects
    "applicant": Actor(Role.LAUNCHER, "lnc-app"),
    "withdrew": Actor(Role.LAUNCHER, "lnc-wd"),  # applied, then withdrew
    "prospect": Actor(Role.LAUNCHER, "lnc-new"),  # never applied
    "invited": Actor(Role.LAUNCHER, "lnc-inv"),  # invited to apply, not answered
}
# Members whose cell is the owner's, and members who only read (and whether they read money).
ACTING_MEMBERS = ("admin", "hiring_manager", "poster")
READING_MEMBERS = {"colleague_own_only": True, "finance": True, "viewer": False}


def internship(
    stage: Stage,
    *,
    matched: bool = True,
    submitted: bool = False,
    dispute: DisputeView | None = None,
    rated_by: tuple[str, ...] = (),
    invitation_only: bool = False,
) -> InternshipState:
    """The state at `stage`, posted by m-poster: three applications (lnc-sel and lnc-app open,
    lnc-wd withdrawn), lnc-inv invited, and lnc-sel selected once `matched`."""
    return InternshipState(
        posting=posting(posted_by="m-poster", invitation_only=invitation_only),
        invitations=[InvitationView("lnc-inv", AT, "m-poster")],
        stage=stage,
        posted_at=AT,
        launcher_id="lnc-sel" if matched else None,
        applicants=[
            ApplicantView("lnc-sel", "I write well", AT),
            ApplicantView("lnc-app", "Me too", AT),
            ApplicantView("lnc-wd", "Never mind", AT, withdrawn=True),
        ],
        submissions=[SubmissionView(1, "https://docs.test/a", "v1", AT)] if submitted else [],
        dispute=dispute,
        ratings={role: Rating(4, "Fine", AT) for role in rated_by},
    )


def opened() -> DisputeView:
    """A dispute the launcher opened, with no outcome yet: the stage is frozen."""
    return DisputeView(Role.LAUNCHER, "Scope keeps growing", AT)


def settled(outcome: str) -> DisputeView:
    return replace(opened(), outcome=outcome)


STATES: dict[str, InternshipState] = {
    "posted": internship(Stage.POSTED, matched=False),
    "posted, invitation only": internship(Stage.POSTED, matched=False, invitation_only=True),
    "matched": internship(Stage.MATCHED),
    "in_progress": internship(Stage.IN_PROGRESS),
    "in_progress, revising": internship(Stage.IN_PROGRESS, submitted=True),
    "in_progress, disputed": internship(Stage.IN_PROGRESS, dispute=opened()),
    "in_review": internship(Stage.IN_REVIEW, submitted=True),
    "in_review, disputed": internship(Stage.IN_REVIEW, submitted=True, dispute=opened()),
    "approved": internship(Stage.APPROVED, submitted=True),
    "paid": internship(Stage.PAID, submitted=True),
    "paid, employer rated": internship(Stage.PAID, submitted=True, rated_by=("employer",)),
    "paid, launcher rated": internship(Stage.PAID, submitted=True, rated_by=("launcher",)),
    "settling": internship(Stage.SETTLING, dispute=settled("split")),
    "completed": internship(Stage.COMPLETED, submitted=True, rated_by=("employer", "launcher")),
    "expired": internship(Stage.EXPIRED, matched=False),
    "cancelled": internship(Stage.CANCELLED),
    "refunded": internship(Stage.REFUNDED),
    "refunded, dispute cancelled": internship(Stage.REFUNDED, dispute=settled("cancelled")),
    "resolved": internship(Stage.RESOLVED, dispute=settled("split")),
}

# What each relation may never ask for, whatever the stage: refused 403.
NOT_FOR_OPS = frozenset(
    {
        *(A.APPLY, A.SELECT, A.KICKOFF, A.SUBMIT, A.REVIEW, A.WITHDRAW, A.DISPUTE, A.FEEDBACK),
        *(A.INVITE, A.DECLINE),
    }
)
NOT_FOR_OWNER = frozenset({A.APPLY, A.SUBMIT, A.WITHDRAW, A.RESOLVE, A.DECLINE})
NOT_FOR_SELECTED = frozenset(
    {A.SELECT, A.KICKOFF, A.REVIEW, A.EXTEND, A.CANCEL, A.RESOLVE, A.INVITE, A.DECLINE}
)
# Applicants may only apply and withdraw; prospects may also decline (refused 409 if nobody
# invited them).
NOT_FOR_APPLICANTS = frozenset(A) - {A.APPLY, A.WITHDRAW}
NOT_FOR_PROSPECTS = NOT_FOR_APPLICANTS - {A.DECLINE}


@dataclass(frozen=True)
class Cell:
    """What one caller may do and see in one state. Anything not allowed and not forbidden
    (403) is refused 409; a caller who cannot see the internship gets 404 for everything."""

    relation: Relation
    allowed: tuple[Action, ...] = ()  # in the lifecycle's order
    forbidden: frozenset[Action] = frozenset()
    applicants: bool = False  # sees every application, not only their own
    work: bool = False  # submissions, payment, dispute and timeline
    ratings: frozenset[str] = field(default_factory=frozenset)
    money: bool = True  # charges, payouts and refunds

    @property
    def sees(self) -> bool:
        return self.relation != Relation.STRANGER


HIDDEN = Cell(Relation.STRANGER)


def ops(*allowed: Action, ratings: tuple[str, ...] = ()) -> Cell:
    return Cell(Relation.OPS, allowed, NOT_FOR_OPS, True, True, frozenset(ratings))


def owner(*allowed: Action, ratings: tuple[str, ...] = (), disputed: bool = False) -> Cell:
    # An open dispute is for ops to settle: the owner may not cancel their way out of it.
    forbidden = NOT_FOR_OWNER | {A.CANCEL} if disputed else NOT_FOR_OWNER
    return Cell(Relation.OWNER, allowed, forbidden, True, True, frozenset(ratings))


def selected(*allowed: Action, ratings: tuple[str, ...] = ()) -> Cell:
    return Cell(Relation.LAUNCHER, allowed, NOT_FOR_SELECTED, False, True, frozenset(ratings))


def applicant(*allowed: Action) -> Cell:
    return Cell(Relation.APPLICANT, allowed, NOT_FOR_APPLICANTS)


def prospect(*allowed: Action) -> Cell:
    return Cell(Relation.PROSPECT, allowed, NOT_FOR_PROSPECTS)


def with_members(row: dict[str, Cell]) -> dict[str, Cell]:
    """The organisation's members beside the owner: an admin, a hiring manager and the poster
    act as the owner does; the others read what the owner reads (the viewer no money) and may
    ask for nothing (403, or 404 for what the owner may not either)."""
    own = row["owner"]
    reading = {
        name: replace(own, allowed=(), forbidden=frozenset(A), money=money)
        for name, money in READING_MEMBERS.items()
    }
    return {**row, **dict.fromkeys(ACTING_MEMBERS, own), **reading}


def parties_only(ops_cell: Cell, owner_cell: Cell, selected_cell: Cell) -> dict[str, Cell]:
    """Once someone is matched, or the posting is closed, only the parties see it."""
    hidden = dict.fromkeys(
        ("other_employer", "applicant", "withdrew", "prospect", "invited"), HIDDEN
    )
    return with_members({"ops": ops_cell, "owner": owner_cell, "selected": selected_cell, **hidden})


BOTH = ("employer", "launcher")
MATRIX: dict[str, dict[str, Cell]] = {
    "posted": with_members(
        {
            "ops": ops(A.CANCEL),
            "owner": owner(A.SELECT, A.CANCEL, A.INVITE),
            "other_employer": HIDDEN,
            "selected": applicant(A.WITHDRAW),  # not selected yet: one of the applicants
            "applicant": applicant(A.WITHDRAW),
            "withdrew": prospect(),  # may neither withdraw again nor apply again
            "prospect": prospect(A.APPLY),
            "invited": prospect(A.APPLY, A.DECLINE),
        }
    ),
    # Only the invited see it among launchers who have not applied.
    "posted, invitation only": with_members(
        {
            "ops": ops(A.CANCEL),
            "owner": owner(A.SELECT, A.CANCEL, A.INVITE),
            "other_employer": HIDDEN,
            "selected": applicant(A.WITHDRAW),
            "applicant": applicant(A.WITHDRAW),
            "withdrew": HIDDEN,
            "prospect": HIDDEN,
            "invited": prospect(A.APPLY, A.DECLINE),
        }
    ),
    "matched": parties_only(ops(A.CANCEL), owner(A.KICKOFF, A.CANCEL), selected(A.WITHDRAW)),
    "in_progress": parties_only(
        ops(A.EXTEND, A.CANCEL),
        owner(A.EXTEND, A.CANCEL, A.DISPUTE),
        selected(A.SUBMIT, A.WITHDRAW, A.DISPUTE),
    ),
    # Work was submitted and sent back: it can no longer be walked away from.
    "in_progress, revising": parties_only(
        ops(A.EXTEND, A.CANCEL),
        owner(A.EXTEND, A.CANCEL, A.DISPUTE),
        selected(A.SUBMIT, A.DISPUTE),
    ),
    "in_progress, disputed": parties_only(
        ops(A.CANCEL, A.RESOLVE), owner(disputed=True), selected()
    ),
    "in_review": parties_only(
        ops(A.CANCEL), owner(A.REVIEW, A.CANCEL, A.DISPUTE), selected(A.DISPUTE)
    ),
    "in_review, disputed": parties_only(ops(A.CANCEL, A.RESOLVE), owner(disputed=True), selected()),
    # Approved work is owed to the launcher: nothing may stop the payout, not even ops.
    "approved": parties_only(ops(), owner(), selected()),
    "paid": parties_only(ops(), owner(A.FEEDBACK), selected(A.FEEDBACK)),
    # Ratings stay hidden from the other side until both are in (or the window closes).
    "paid, employer rated": parties_only(
        ops(ratings=("employer",)), owner(ratings=("employer",)), selected(A.FEEDBACK)
    ),
    "paid, launcher rated": parties_only(
        ops(ratings=("launcher",)), owner(A.FEEDBACK), selected(ratings=("launcher",))
    ),
    "settling": parties_only(ops(), owner(), selected()),
    "completed": parties_only(ops(ratings=BOTH), owner(ratings=BOTH), selected(ratings=BOTH)),
    # Expired unmatched: no launcher is a party to it any more.
    "expired": parties_only(ops(), owner(), HIDDEN),
    "cancelled": parties_only(ops(), owner(), selected()),
    "refunded": parties_only(ops(), owner(), selected()),
    "refunded, dispute cancelled": parties_only(ops(), owner(), selected()),
    "resolved": parties_only(ops(), owner(), selected()),
}

CELLS = [(state, caller) for state, row in MATRIX.items() for caller in row]


def test_the_matrix_covers_every_stage_and_caller() -> None:
    assert set(MATRIX) == set(STATES)
    assert {s.stage for s in STATES.values()} == set(Stage)
    assert {s for s, st in STATES.items() if st.posting.invitation_only} == {
        "posted, invitation only"
    }
    assert {s for s, st in STATES.items() if st.disputed} == {
        "in_progress, disputed",
        "in_review, disputed",
    }
    for state, row in MATRIX.items():
        assert set(row) == set(CALLERS), state
        for caller, cell in row.items():
            assert not set(cell.allowed) & cell.forbidden, (state, caller)


@pytest.mark.parametrize(("state", "caller"), CELLS)
def test_what_each_caller_may_ask_for(state: str, caller: str) -> None:
    s, actor, cell = STATES[state], CALLERS[caller], MATRIX[state][caller]
    assert rulebook.allowed_actions(s, actor) == list(cell.allowed)

    def expected(action: Action) -> str | None:
        if not cell.sees:
            return errors.NOT_FOUND
        if action in cell.allowed:
            return None
        return errors.FORBIDDEN if action in cell.forbidden else errors.CONFLICT

    refused = {a: rulebook.refusal(a, s, actor) for a in Action}
    assert {a: r.kind if r else None for a, r in refused.items()} == {
        a: expected(a) for a in Action
    }


@pytest.mark.parametrize(("state", "caller"), CELLS)
def test_what_each_caller_may_see(state: str, caller: str) -> None:
    s, actor, cell = STATES[state], CALLERS[caller], MATRIX[state][caller]
    assert rulebook.relation(s, actor) == cell.relation
    assert rulebook.can_see(s, actor) == cell.sees
    assert rulebook.visibility(s, actor) == rulebook.Visibility(
        all_applicants=cell.applicants,
        work=cell.work,
        ratings=cell.ratings,
        money=cell.money and cell.work,
    )
    # The list shows exactly the rows whose detail the caller may open.
    scope = rulebook.list_scope(actor)
    invited = any(i.launcher_id == actor.id for i in s.invitations) or any(
        a.launcher_id == actor.id and not a.withdrawn for a in s.applicants
    )
    assert (
        rulebook.in_scope(
            scope,
            s.stage,
            s.posting.employer_id,
            s.launcher_id,
            s.posting.invitation_only,
            invited,
        )
        == cell.sees
    )


@pytest.mark.parametrize("state", STATES)
def test_the_system_sees_nothing_through_the_rulebook(state: str) -> None:
    s, system = STATES[state], Actor(Role.SYSTEM, "system")
    assert not rulebook.can_see(s, system)
    assert not rulebook.in_scope(
        rulebook.list_scope(system), s.stage, s.posting.employer_id, s.launcher_id
    )
    assert rulebook.allowed_actions(s, system) == []


NOT_FOUND, FORBIDDEN, CONFLICT = errors.NOT_FOUND, errors.FORBIDDEN, errors.CONFLICT


@pytest.mark.parametrize(
    ("state", "caller", "action", "kind", "message"),
    [
        ("posted", "other_employer", A.SELECT, NOT_FOUND, "internship not found"),
        ("matched", "applicant", A.WITHDRAW, NOT_FOUND, "internship not found"),
        ("posted", "owner", A.APPLY, FORBIDDEN, "Employers can't apply here"),
        ("in_review, disputed", "owner", A.CANCEL, FORBIDDEN, "while a dispute is open"),
        ("posted", "owner", A.KICKOFF, CONFLICT, "You can't kick off now: the internship is"),
        ("in_review, disputed", "selected", A.DISPUTE, CONFLICT, "only ops can settle it"),
        ("posted", "applicant", A.APPLY, CONFLICT, "You have already applied"),
        ("posted", "withdrew", A.APPLY, CONFLICT, "You have already applied"),
        ("posted", "withdrew", A.WITHDRAW, CONFLICT, "no open application to withdraw"),
        ("in_progress, revising", "selected", A.WITHDRAW, CONFLICT, "Work has been submitted"),
        ("paid, employer rated", "owner", A.FEEDBACK, CONFLICT, "already left feedback"),
        ("completed", "selected", A.FEEDBACK, CONFLICT, "the internship is completed"),
        ("in_review", "finance", A.REVIEW, FORBIDDEN, "As finance you can read but not review"),
        ("posted", "viewer", A.INVITE, FORBIDDEN, "ask a hiring manager or an admin"),
        ("matched", "colleague_own_only", A.KICKOFF, FORBIDDEN, "only on internships you posted"),
        ("posted", "prospect", A.DECLINE, CONFLICT, "You were not invited"),
        ("posted", "applicant", A.INVITE, FORBIDDEN, "Launchers can't invite launchers"),
    ],
)
def test_why_an_action_is_refused(
    state: str, caller: str, action: Action, kind: str, message: str
) -> None:
    refused = rulebook.refusal(action, STATES[state], CALLERS[caller])
    assert refused is not None
    assert refused.kind == kind and message in refused.message


@pytest.mark.parametrize("stage", Stage)
def test_ratings_are_revealed_only_once_completed(stage: Stage) -> None:
    assert rulebook.ratings_revealed(stage) == (stage == Stage.COMPLETED)


@pytest.mark.parametrize(
    ("role", "may"),
    [(Role.OPS, True), (Role.EMPLOYER, False), (Role.LAUNCHER, False), (Role.SYSTEM, False)],
)
def test_only_ops_may_cancel_without_refunding(role: Role, may: bool) -> None:
    assert rulebook.may_withhold_refund(Actor(role, "x")) == may


REFUSED = "payout of $360.00 refused by Stripe (Stripe rejected the request: account closed)"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("stage", [Stage.IN_PROGRESS, Stage.APPROVED, Stage.SETTLING])
def test_only_ops_may_retry_a_refused_payment(stage: Stage, caller: str) -> None:
    refused = replace(internship(stage), payment_refused=REFUSED)
    assert rulebook.may_retry_payment(refused, CALLERS[caller]) == (caller == "ops")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("stage", list(Stage))
def test_nothing_to_retry_while_no_payment_is_refused(stage: Stage, caller: str) -> None:
    assert not rulebook.may_retry_payment(internship(stage), CALLERS[caller])


def test_the_system_may_not_retry_a_payment() -> None:
    refused = replace(internship(Stage.APPROVED), payment_refused=REFUSED)
    assert not rulebook.may_retry_payment(refused, Actor(Role.SYSTEM, "system"))


# ---------------------------------------------------------------- a posting takes so many


def posted_with_limit(limit: int | None) -> InternshipState:
    """Posted, with two open applications (lnc-sel, lnc-app) and one withdrawn (lnc-wd)."""
    s = internship(Stage.POSTED, matched=False)
    policy = replace(s.posting.policy, max_open_applications=limit)
    return replace(s, posting=replace(s.posting, policy=policy))


def test_a_full_posting_refuses_new_applicants_and_says_where_to_go() -> None:
    full = posted_with_limit(2)
    assert rulebook.open_applications(full) == 2 and rulebook.posting_full(full)
    refused = rulebook.refusal(A.APPLY, full, CALLERS["prospect"])
    assert refused is not None
    assert (refused.kind, refused.code) == (CONFLICT, rulebook.POSTING_FULL)
    assert "as many applicants as it takes (2 open applications)" in refused.message
    assert "Try other postings" in refused.message
    # Nothing is offered that would be refused; everything else goes on as before.
    assert A.APPLY not in rulebook.allowed_actions(full, CALLERS["prospect"])
    assert A.SELECT in rulebook.allowed_actions(full, CALLERS["owner"])
    assert rulebook.allowed_actions(full, CALLERS["applicant"]) == [A.WITHDRAW]
    # What the caller already did is said first (409 in the usual order).
    again = rulebook.refusal(A.APPLY, full, CALLERS["applicant"])
    assert again is not None and again.code is None and "already applied" in again.message


def test_withdrawn_applications_leave_their_place_free() -> None:
    # Three applications, one withdrawn: a posting that takes three has a place left.
    room = posted_with_limit(3)
    assert not rulebook.posting_full(room)
    assert rulebook.refusal(A.APPLY, room, CALLERS["prospect"]) is None
    s = replace(room, applicants=[replace(a, withdrawn=True) for a in room.applicants])
    assert rulebook.open_applications(s) == 0


def test_internships_posted_before_the_limit_take_any_number() -> None:
    old = posted_with_limit(None)
    many = [ApplicantView(f"lnc-{n}", "Pick me", AT) for n in range(1000)]
    old = replace(old, applicants=many)
    assert not rulebook.posting_full(old)
    assert rulebook.refusal(A.APPLY, old, CALLERS["prospect"]) is None


def test_the_default_policy_takes_two_hundred() -> None:
    s = internship(Stage.POSTED, matched=False)
    assert s.posting.policy.max_open_applications == 200
    s = replace(s, applicants=[ApplicantView(f"lnc-{n}", "Hi", AT) for n in range(199)])
    assert not rulebook.posting_full(s)
    s.applicants.append(ApplicantView("lnc-200", "Hi", AT))
    assert rulebook.posting_full(s)


# The API's resource and stage names, which mean nothing to the people reading a refusal.
INTERNAL_WORDS = {
    "selection",
    "submissions",
    "extension",
    "cancellation",
    "withdrawal",
    "resolution",
    "matched",
    "in_progress",
    "in_review",
    "settling",
}


def test_refusals_are_in_peoples_words() -> None:
    said = [
        refused.message
        for state in STATES.values()
        for caller in CALLERS.values()
        for action in Action
        if (refused := rulebook.refusal(action, state, caller)) is not None
    ]
    assert said
    for message in said:
        assert not set(re.findall(r"[a-z_]+", message)) & INTERNAL_WORDS, message


def test_an_approved_internship_moves_on_by_itself_unless_its_payout_waits() -> None:
    def entry(event: str) -> TimelineEntry:
        return TimelineEntry(1, datetime.now(UTC), Stage.APPROVED, event, Role.SYSTEM, "system")

    approved = replace(STATES["in_review"], stage=Stage.APPROVED, timeline=[entry("approved")])
    assert rulebook.moving_on(approved)
    waiting = replace(approved, timeline=[entry("approved"), entry("payout_waiting")])
    assert not rulebook.moving_on(waiting)
    assert not rulebook.moving_on(replace(approved, payment_refused="account closed"))
    assert not rulebook.moving_on(replace(approved, stage=Stage.PAID))


@pytest.mark.parametrize(
    ("right", "words"),
    [
        (rulebook.OrgRight.POST, "Only admins and hiring managers can post internships"),
        (rulebook.OrgRight.MONEY, "Only admins, hiring managers and finance members can read"),
        (rulebook.OrgRight.CARD, "Only admins can add or replace the card"),
    ],
)
def test_a_member_without_a_right_is_told_who_has_it(right: rulebook.OrgRight, words: str) -> None:
    assert rulebook.lacking(right).startswith(words)
    for role, rights in rulebook.ORG_RIGHTS.items():
        member = Actor(Role.EMPLOYER, "emp-ada", "m-1", role)
        assert rulebook.member_may(member, right) == (right in rights)
