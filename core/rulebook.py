"""Who may see and do what with an internship: every rule, written once.

Pure functions over the workflow's state and the caller, with no Temporal and no database. The
workflow's validators and the API's presenters and list query all ask this module, so a client
is never offered an action the workflow would refuse, and a list never shows a row that the
detail would answer 404 for.

A refusal comes in the order the API reports it: not visible (404), wrong role or not yours
(403), not possible in this stage (409), what this caller already did (409), then a posting
that is full (409 `posting_full`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from core import errors
from core.internship import (
    TERMINAL_STAGES,
    Action,
    Actor,
    InternshipState,
    InvitationView,
    MemberRole,
    Role,
    Stage,
    TimelineEntry,
)

# Which actions each stage admits; who may take them is decided by `_role_allows`.
STAGE_ACTIONS: dict[Stage, frozenset[Action]] = {
    Stage.POSTED: frozenset(
        {
            Action.APPLY,
            Action.SELECT,
            Action.CANCEL,
            Action.WITHDRAW,
            Action.INVITE,
            Action.DECLINE,
        }
    ),
    Stage.MATCHED: frozenset({Action.KICKOFF, Action.CANCEL, Action.WITHDRAW}),
    Stage.IN_PROGRESS: frozenset(
        {Action.SUBMIT, Action.EXTEND, Action.CANCEL, Action.WITHDRAW, Action.DISPUTE}
    ),
    Stage.IN_REVIEW: frozenset({Action.REVIEW, Action.CANCEL, Action.DISPUTE}),
    # Money owed to the launcher (approved work, a resolution in their favour) is paid,
    # however long onboarding takes: nothing may stop it.
    Stage.APPROVED: frozenset(),
    Stage.SETTLING: frozenset(),
    Stage.PAID: frozenset({Action.FEEDBACK}),
}
# A dispute freezes the stage: only its resolution, or an ops cancellation, moves on.
DISPUTED_ACTIONS = frozenset({Action.RESOLVE, Action.CANCEL})


class Relation(StrEnum):
    """How a caller stands to one internship."""

    OPS = "ops"
    OWNER = "owner"  # a member of the employer organisation that posted it
    LAUNCHER = "launcher"  # the launcher selected for it
    APPLICANT = "applicant"  # a launcher with an open application (while posted)
    PROSPECT = "prospect"  # any other launcher, while the posting is open
    STRANGER = "stranger"  # anyone else: the internship does not exist for them


def relation(state: InternshipState, actor: Actor) -> Relation:
    if actor.role == Role.OPS:
        return Relation.OPS
    if actor.role == Role.EMPLOYER and actor.id == state.posting.employer_id:
        return Relation.OWNER
    if actor.role == Role.LAUNCHER:
        if actor.id == state.launcher_id:
            return Relation.LAUNCHER
        if state.stage == Stage.POSTED:
            open_application = any(
                a.launcher_id == actor.id and not a.withdrawn for a in state.applicants
            )
            if open_application:
                return Relation.APPLICANT
            # An invitation-only posting does not exist for launchers nobody invited.
            if not state.posting.invitation_only or invitation_of(state, actor.id):
                return Relation.PROSPECT
    return Relation.STRANGER


def invitation_of(state: InternshipState, launcher_id: str) -> InvitationView | None:
    return next((i for i in state.invitations if i.launcher_id == launcher_id), None)


# ---------------------------------------------------------------- organisations


# What each member of an employer organisation may do besides reading its internships. Acting
# on an internship (select, kick off, review, extend, cancel, dispute, rate, invite) is
# `LIFECYCLE`; a hiring manager may be limited to the internships they posted (`own_only`).
class OrgRight(StrEnum):
    POST = "post"  # post internships
    LIFECYCLE = "lifecycle"  # act on the organisation's internships
    MONEY = "money"  # read charges, refunds, receipts and the card
    CARD = "card"  # add or replace the card
    MEMBERS = "members"  # invite, change and remove members
    PROFILE = "profile"  # the organisation's profile and its notification address


ORG_RIGHTS: dict[MemberRole, frozenset[OrgRight]] = {
    MemberRole.ADMIN: frozenset(OrgRight),
    MemberRole.HIRING_MANAGER: frozenset({OrgRight.POST, OrgRight.LIFECYCLE, OrgRight.MONEY}),
    MemberRole.FINANCE: frozenset({OrgRight.MONEY}),
    MemberRole.VIEWER: frozenset(),
}
MEMBER_ROLE_NAMES = {
    MemberRole.ADMIN: "Admin",
    MemberRole.HIRING_MANAGER: "Hiring manager",
    MemberRole.FINANCE: "Finance",
    MemberRole.VIEWER: "Viewer",
}


def member_may(actor: Actor, right: OrgRight) -> bool:
    """Whether an employer's member holds `right` (an employer actor without a member, from
    before organisations had members, holds them all, as the founder's admin does)."""
    if actor.role != Role.EMPLOYER:
        return False
    return actor.member_role is None or right in ORG_RIGHTS[actor.member_role]


def may_read_document(actor: Actor, employer_id: str, kind: str, launcher_id: str | None) -> bool:
    """Who reads a receipt, credit note or statement (`core.db.Document`): ops; the
    organisation's members who read its money (admins, hiring managers, finance); and, of a
    statement, the launcher it paid. Anyone else is told it does not exist."""
    if actor.role == Role.OPS:
        return True
    if actor.role == Role.EMPLOYER:
        return actor.id == employer_id and member_may(actor, OrgRight.MONEY)
    return actor.role == Role.LAUNCHER and kind == "statement" and actor.id == launcher_id


MEMBERS_CALLED = {
    MemberRole.ADMIN: "admins",
    MemberRole.HIRING_MANAGER: "hiring managers",
    MemberRole.FINANCE: "finance members",
    MemberRole.VIEWER: "viewers",
}
RIGHT_DOING = {
    OrgRight.POST: "post internships",
    OrgRight.LIFECYCLE: "act on internships",
    OrgRight.MONEY: "read charges, receipts and the card",
    OrgRight.CARD: "add or replace the card",
    OrgRight.MEMBERS: "invite, change and remove members",
    OrgRight.PROFILE: "change the organisation's profile",
}


def lacking(right: OrgRight) -> str:
    """What a member without `right` is told: who has it, and to ask them."""
    holders = [MEMBERS_CALLED[r] for r in MemberRole if right in ORG_RIGHTS[r]]
    who = " and ".join([", ".join(holders[:-1]), holders[-1]] if len(holders) > 1 else holders)
    return f"Only {who} can {RIGHT_DOING[right]}: ask one of them in your organisation"


def member_acts_on(state: InternshipState, actor: Actor) -> bool:
    """Whether this member may act on this internship of their organisation: lifecycle rights,
    and for a hiring manager limited to their own, one they posted."""
    return member_acts_on_posting(actor, state.posting.posted_by)


def member_acts_on_posting(actor: Actor, posted_by: str | None) -> bool:
    """`member_acts_on` for an internship posted by the member `posted_by` (None: the founder,
    before members existed)."""
    if not member_may(actor, OrgRight.LIFECYCLE):
        return False
    return not actor.own_only or (posted_by or actor.id) == actor.member_id


def _member_refusal(state: InternshipState, actor: Actor, action: Action) -> str:
    if member_may(actor, OrgRight.LIFECYCLE):  # a hiring manager, on a colleague's internship
        return (
            f"You can {DOING[action]} only on internships you posted: ask the colleague who "
            "posted this one, or an admin to let you act on all of them"
        )
    assert actor.member_role is not None
    return (
        f"As {MEMBER_ROLE_NAMES[actor.member_role].lower()} you can read but not "
        f"{DOING[action]}: ask a hiring manager or an admin of your organisation"
    )


PARTIES = frozenset({Relation.OPS, Relation.OWNER, Relation.LAUNCHER})


# ---------------------------------------------------------------- seeing


def can_see(state: InternshipState, actor: Actor) -> bool:
    """Ops see everything; employers their own; launchers open postings and the work they
    were selected for. An applicant who was not chosen, or withdrew, loses sight of it once
    someone else is matched."""
    return relation(state, actor) != Relation.STRANGER


@dataclass(frozen=True)
class Visibility:
    """What one caller may read of an internship they can see."""

    all_applicants: bool  # every application and pitch, or only the caller's own
    work: bool  # submissions, payment, dispute and timeline
    ratings: frozenset[str]  # the roles whose rating the caller may read
    money: bool = True  # what was charged, paid and refunded (not an employer's viewer)


def visibility(state: InternshipState, actor: Actor) -> Visibility:
    rel = relation(state, actor)
    party = rel in PARTIES
    return Visibility(
        all_applicants=rel in (Relation.OPS, Relation.OWNER),
        work=party,
        ratings=_ratings_shown(state, actor, rel),
        money=party and (rel != Relation.OWNER or member_may(actor, OrgRight.MONEY)),
    )


def timeline(state: InternshipState, actor: Actor) -> list[TimelineEntry]:
    """The events a party may read: applicants stay private from each other, so a launcher
    sees no other launcher's events (applications, withdrawals, who held the work before)."""
    rel = relation(state, actor)
    if rel not in PARTIES:
        return []
    if rel in (Relation.OPS, Relation.OWNER):
        return list(state.timeline)
    return [
        e
        for e in state.timeline
        if (e.actor_role != Role.LAUNCHER or e.actor_id == actor.id) and e.event != "invited"
    ]


def as_seen_by(state: InternshipState, actor: Actor) -> InternshipState:
    """The state with only the applications and timeline `actor` may read: what an update
    answers its caller. Each answer stays in the workflow's history, so a launcher's
    application answers with their own application alone (not every earlier one, which made
    the history grow with the square of the applicants); the employer's and ops' answers
    carry every application, a bounded number of times per internship."""
    sees = visibility(state, actor)
    return replace(
        state,
        applicants=[
            a for a in state.applicants if sees.all_applicants or a.launcher_id == actor.id
        ],
        invitations=[
            i for i in state.invitations if sees.all_applicants or i.launcher_id == actor.id
        ],
        timeline=timeline(state, actor),
        # The deadlines worded for the caller (each stays in history with the answer).
        deadlines=[
            d for d in state.deadlines if d.for_roles is None or actor.role.value in d.for_roles
        ],
    )


def ratings_revealed(stage: Stage) -> bool:
    """Ratings stay hidden until both are in or the feedback window closes: either completes."""
    return stage == Stage.COMPLETED


def _ratings_shown(state: InternshipState, actor: Actor, rel: Relation) -> frozenset[str]:
    if rel not in PARTIES:
        return frozenset()
    if rel == Relation.OPS or ratings_revealed(state.stage):
        return frozenset(state.ratings)
    return frozenset(state.ratings) & {actor.role.value}


@dataclass(frozen=True)
class ListScope:
    """Which rows of the internship list a caller sees: the same rule as `can_see`, put so a
    query can apply it (the API turns it into SQL; `in_scope` is its reference)."""

    everything: bool = False
    employer_id: str | None = None  # internships this employer posted
    launcher_id: str | None = None  # internships this launcher was selected for
    open_postings: bool = False  # every posting still open for applications


def list_scope(actor: Actor) -> ListScope:
    if actor.role == Role.OPS:
        return ListScope(everything=True)
    if actor.role == Role.EMPLOYER:
        return ListScope(employer_id=actor.id)
    if actor.role == Role.LAUNCHER:
        return ListScope(launcher_id=actor.id, open_postings=True)
    return ListScope()


def sees_contacts(actor: Actor) -> bool:
    """Who reads the parties' names and emails beside any internship, and finds internships
    by them: ops."""
    return actor.role == Role.OPS


def in_scope(
    scope: ListScope,
    stage: Stage,
    employer_id: str,
    launcher_id: str | None,
    invitation_only: bool = False,
    invited: bool = False,
) -> bool:
    """`invited`: the scope's launcher was invited to it (or applied: an application to an
    invitation-only posting answers an invitation)."""
    return (
        scope.everything
        or (scope.employer_id is not None and scope.employer_id == employer_id)
        or (scope.launcher_id is not None and scope.launcher_id == launcher_id)
        or (scope.open_postings and stage == Stage.POSTED and (not invitation_only or invited))
    )


# ---------------------------------------------------------------- doing


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused: `kind` is one of `core.errors`, which the API maps to a status;
    `code`, when set, names the refusal more precisely than the kind's error code."""

    kind: str
    message: str
    code: str | None = None


POSTING_FULL = "posting_full"


def open_applications(state: InternshipState) -> int:
    """Applications that can still be selected: withdrawn ones don't count."""
    return sum(1 for a in state.applicants if not a.withdrawn)


def posting_full(state: InternshipState) -> bool:
    """A posting takes at most `max_open_applications` open applications at once (each is
    kept in the workflow's history); a withdrawal frees a place. Internships posted before
    the limit have none."""
    limit = state.posting.policy.max_open_applications
    return limit is not None and open_applications(state) >= limit


def posting_full_message(state: InternshipState) -> str:
    limit = state.posting.policy.max_open_applications
    return (
        "This posting already has as many applicants as it takes "
        f"({limit} open application{'' if limit == 1 else 's'}), so it can't take yours. "
        "Try other postings; a place opens here only if an applicant withdraws."
    )


def _role_allows(action: Action, state: InternshipState, rel: Relation) -> bool:
    """Whether the caller's relation may take `action` (a member's own rights are
    `member_acts_on`'s, asked after this)."""
    match action:
        case Action.APPLY | Action.WITHDRAW:
            return rel in (Relation.LAUNCHER, Relation.APPLICANT, Relation.PROSPECT)
        case Action.SUBMIT:
            return rel == Relation.LAUNCHER
        case Action.SELECT | Action.KICKOFF | Action.REVIEW | Action.INVITE:
            return rel == Relation.OWNER
        case Action.EXTEND:
            return rel in (Relation.OWNER, Relation.OPS)
        case Action.CANCEL:
            # An open dispute is for ops to settle; the employer can't cancel their way out.
            return rel == Relation.OPS or (rel == Relation.OWNER and not state.disputed)
        case Action.DISPUTE | Action.FEEDBACK:
            return rel in (Relation.OWNER, Relation.LAUNCHER)
        case Action.RESOLVE:
            return rel == Relation.OPS
        case Action.DECLINE:
            return rel == Relation.PROSPECT


def _stage_allows(action: Action, state: InternshipState) -> bool:
    if state.stage in TERMINAL_STAGES:
        return False
    return action in (DISPUTED_ACTIONS if state.disputed else STAGE_ACTIONS[state.stage])


def _already_done(action: Action, state: InternshipState, actor: Actor) -> str | None:
    """What this caller's own history rules out, whatever the stage allows."""
    if action == Action.APPLY and any(a.launcher_id == actor.id for a in state.applicants):
        return "You have already applied to this internship"
    declined = (i := invitation_of(state, actor.id)) is not None and i.answer == "declined"
    if action == Action.APPLY and declined:
        return "You declined the invitation to this internship"
    if action == Action.DECLINE:
        invited = invitation_of(state, actor.id)
        if invited is None:
            return "You were not invited to this internship"
        if invited.answer:
            return f"You have already answered this invitation ({invited.answer})"
    if (
        action == Action.DISPUTE
        and actor.role == Role.LAUNCHER
        and state.delivered_work_kept
        and state.overdue
        and not state.submissions
    ):
        return (
            "The work is overdue and nothing has been submitted, so a dispute can't hold the "
            "deadline: submit what you have, or ask the employer for an extension"
        )
    if action == Action.WITHDRAW:
        if state.submissions:
            return "Work has been submitted, so it can no longer be left; open a dispute instead"
        if state.stage == Stage.POSTED and relation(state, actor) != Relation.APPLICANT:
            return "You have no open application to withdraw"
    if action == Action.FEEDBACK and actor.role.value in state.ratings:
        return "You have already left feedback"
    return None


# Refusals in people's words, not the API's resource and stage names.
DOING = {
    Action.APPLY: "apply",
    Action.SELECT: "select a launcher",
    Action.KICKOFF: "kick off",
    Action.SUBMIT: "submit work",
    Action.REVIEW: "review the work",
    Action.EXTEND: "extend the due date",
    Action.CANCEL: "cancel",
    Action.WITHDRAW: "withdraw",
    Action.DISPUTE: "open a dispute",
    Action.RESOLVE: "resolve a dispute",
    Action.FEEDBACK: "leave a rating",
    Action.INVITE: "invite launchers",
    Action.DECLINE: "decline the invitation",
}
WHERE_IT_STANDS = {
    Stage.POSTED: "is still open for applications",
    Stage.MATCHED: "has a launcher selected and waits for its kickoff",
    Stage.IN_PROGRESS: "is in progress",
    Stage.IN_REVIEW: "waits for the employer's review",
    Stage.APPROVED: "is approved and the launcher is being paid",
    Stage.PAID: "is paid and waits for ratings",
    Stage.SETTLING: "is paying out a resolved dispute",
    Stage.COMPLETED: "is completed",
    Stage.EXPIRED: "expired before a kickoff",
    Stage.CANCELLED: "was cancelled",
    Stage.REFUNDED: "was refunded",
    Stage.RESOLVED: "was settled by ops",
}


def refusal(action: Action, state: InternshipState, actor: Actor) -> Refusal | None:
    """None if `actor` may ask for `action` now; otherwise why not."""
    rel = relation(state, actor)
    if rel == Relation.STRANGER:
        return Refusal(errors.NOT_FOUND, "internship not found")
    if not _role_allows(action, state, rel):
        reason = " while a dispute is open" if state.disputed and rel != Relation.OPS else " here"
        who = f"{actor.role.value.capitalize()}s"
        return Refusal(errors.FORBIDDEN, f"{who} can't {DOING[action]}{reason}")
    if rel == Relation.OWNER and not member_acts_on(state, actor):
        return Refusal(errors.FORBIDDEN, _member_refusal(state, actor, action))
    if not _stage_allows(action, state):
        if state.disputed:
            reason = "a dispute is open and only ops can settle it"
        else:
            reason = f"the internship {WHERE_IT_STANDS[state.stage]}"
        return Refusal(errors.CONFLICT, f"You can't {DOING[action]} now: {reason}")
    if done := _already_done(action, state, actor):
        return Refusal(errors.CONFLICT, done)
    if action == Action.APPLY and posting_full(state):
        return Refusal(errors.CONFLICT, posting_full_message(state), POSTING_FULL)
    if action == Action.INVITE and len(state.invitations) >= MAX_INVITATIONS:
        return Refusal(
            errors.CONFLICT,
            f"This posting has {MAX_INVITATIONS} invitations already, as many as one takes: "
            "wait for their answers, or post another",
        )
    return None


# Invitations one posting takes (each is kept in the workflow's history).
MAX_INVITATIONS = 50


def invitation_refusal(state: InternshipState, launcher_id: str) -> str | None:
    """Why this launcher can't be invited to this posting, whoever invites (None if they can);
    whether they take invitations at all is their setting, asked by the API."""
    if invitation_of(state, launcher_id):
        return "This launcher was invited to this internship already"
    if any(a.launcher_id == launcher_id for a in state.applicants):
        return "This launcher has applied to this internship already"
    return None


def refusal_details(refused: Refusal, state: InternshipState, actor: Actor) -> dict[str, object]:
    """What a refusal tells the caller besides its message: a 409 also says what is possible
    now, and a refusal with a code of its own (`posting_full`) names it in `code`."""
    details: dict[str, object] = {}
    if refused.kind == errors.CONFLICT:
        details = {
            "stage": state.stage.value,
            "allowed_actions": [a.value for a in allowed_actions(state, actor)],
        }
    if refused.code == POSTING_FULL:
        details["max_open_applications"] = state.posting.policy.max_open_applications
    if refused.code:
        details["code"] = refused.code
    return details


def allowed_actions(state: InternshipState, actor: Actor) -> list[Action]:
    """Every action `actor` may ask for now, in the lifecycle's order."""
    return [a for a in Action if refusal(a, state, actor) is None]


def cancellation_opens_dispute(state: InternshipState, actor: Actor) -> bool:
    """Delivered work is never refunded away: once anything was submitted, only ops may refund
    the fee, so an employer's cancellation goes to ops as a dispute instead."""
    return state.delivered_work_kept and bool(state.submissions) and actor.role != Role.OPS


def dispute_deadline(state: InternshipState) -> datetime | None:
    """When an open dispute's default outcome applies if ops have not decided (None for none,
    and for internships started before disputes ended)."""
    if not (state.disputed and state.delivered_work_kept):
        return None
    assert state.dispute is not None
    policy = state.posting.policy
    return state.dispute.opened_at + policy.scaled(policy.dispute_decision)


# What an open dispute comes to when ops have not decided by its deadline, by whether work was
# delivered (`dispute_default_outcome`; the terms of each internship say it, `core.terms`).
DISPUTE_DEFAULT_IF_DELIVERED = "pay_launcher"
DISPUTE_DEFAULT_IF_NOT_DELIVERED = "refund"


def dispute_default_outcome(state: InternshipState) -> str:
    """What a dispute comes to when ops have not decided by its deadline: delivered work is
    paid for, as the review window's silence pays it; nothing delivered is refunded, as the
    overdue cancellation refunds it."""
    if state.submissions:
        return DISPUTE_DEFAULT_IF_DELIVERED
    return DISPUTE_DEFAULT_IF_NOT_DELIVERED


def may_withhold_refund(actor: Actor) -> bool:
    """Cancelling after kickoff refunds the employer unless ops decide otherwise."""
    return actor.role == Role.OPS


def may_retry_payment(state: InternshipState, actor: Actor) -> bool:
    """Ops, and only ops, may ask for a refused payment to be tried again, and only while one
    waits for it: Stripe refused a refund or payout for good (`payment_refused`)."""
    return actor.role == Role.OPS and bool(state.payment_refused)


def moving_on(state: InternshipState) -> bool:
    """The workflow moves the internship on by itself in a moment: it is paying the launcher
    of approved work (or of a resolved dispute), not waiting for them to set up payouts or
    for ops to retry a refused payment. A page after an action waits briefly for it, so it
    shows what comes next (the rating) without a reload."""
    if state.stage not in (Stage.APPROVED, Stage.SETTLING) or state.payment_refused:
        return False
    paying = ("approved", "dispute_resolved", "payout_waiting")
    last = next((e.event for e in reversed(state.timeline) if e.event in paying), None)
    return last != "payout_waiting"  # waiting for the launcher's payout set-up: not a moment


# ---------------------------------------------------------------- ops

# The escalation level at which ops take over (0 none, 1 reminded, 2 ops).
OPS_ESCALATION = 2


def needs_ops(
    stage: Stage, escalation_level: int, overdue: bool, disputed: bool, payment_refused: bool
) -> bool:
    """What the ops queue lists: an open internship that was escalated to ops, is overdue, is
    disputed, or has a payment Stripe refused for good (`api.service.reads.needs_ops` is its
    SQL)."""
    return stage not in TERMINAL_STAGES and (
        escalation_level >= OPS_ESCALATION or overdue or disputed or payment_refused
    )


# ---------------------------------------------------------------- profiles


def sees_whole_profile(viewer: Actor | None, launcher_id: str) -> bool:
    """Employers (who choose among launchers), ops and the launcher themself read every part of
    a launcher's profile; anyone else (not signed in, another launcher) only the parts the
    launcher made public (`Launcher.public_parts`)."""
    if viewer is None:
        return False
    return viewer.role in (Role.EMPLOYER, Role.OPS) or (
        viewer.role == Role.LAUNCHER and viewer.id == launcher_id
    )


# ---------------------------------------------------------------- conversations


class ThreadAccess(StrEnum):
    NONE = "none"  # the thread does not exist for them
    READ = "read"
    WRITE = "write"


def in_conversation(state: InternshipState, launcher_id: str) -> bool:
    """Whether a launcher has a thread with the organisation about this internship: they
    applied (even if they withdrew or were passed over), were invited, or were selected."""
    return (
        launcher_id == state.launcher_id
        or any(a.launcher_id == launcher_id for a in state.applicants)
        or invitation_of(state, launcher_id) is not None
    )


def thread_open(state: InternshipState, launcher_id: str) -> bool:
    """A thread takes messages while its launcher may still get (or has) the work: while the
    posting is open to them, then, once selected, for the whole internship. An applicant not
    selected keeps reading it once someone else is matched; so does everyone once it ends."""
    if state.stage in TERMINAL_STAGES:
        return False
    if launcher_id == state.launcher_id:
        return True
    if state.stage != Stage.POSTED:
        return False
    applications = [a for a in state.applicants if a.launcher_id == launcher_id]
    if applications:
        return not applications[-1].withdrawn
    invited = invitation_of(state, launcher_id)
    return invited is not None and invited.answer != "declined"


def thread_access(state: InternshipState, actor: Actor, launcher_id: str) -> ThreadAccess:
    """Who reads and writes the thread between `launcher_id` and the organisation: that
    launcher, the organisation's members (writing if they may act on the internship), and ops
    (always writing, marked as ops). No launcher ever reads another's thread."""
    if not in_conversation(state, launcher_id):
        return ThreadAccess.NONE
    if actor.role == Role.OPS:
        return ThreadAccess.WRITE
    if actor.role == Role.EMPLOYER and actor.id == state.posting.employer_id:
        writes = member_acts_on(state, actor) and thread_open(state, launcher_id)
    elif actor.role == Role.LAUNCHER and actor.id == launcher_id:
        writes = thread_open(state, launcher_id)
    else:
        return ThreadAccess.NONE
    return ThreadAccess.WRITE if writes else ThreadAccess.READ


def threads_seen(state: InternshipState, actor: Actor) -> list[str]:
    """The launchers whose threads `actor` may read, selected launcher first."""
    launchers = [state.launcher_id] if state.launcher_id else []
    launchers += [a.launcher_id for a in state.applicants]
    launchers += [i.launcher_id for i in state.invitations]
    unique = list(dict.fromkeys(launchers))
    return [lid for lid in unique if thread_access(state, actor, lid) != ThreadAccess.NONE]


def member_writing_refusal(actor: Actor) -> str:
    """What a member who reads an internship but may not act on it is told when they write."""
    if member_may(actor, OrgRight.LIFECYCLE):
        why = (
            "you can write only about internships you posted: ask the colleague who posted "
            "this one, or an admin to let you act on all of them"
        )
    else:
        assert actor.member_role is not None
        role = MEMBER_ROLE_NAMES[actor.member_role].lower()
        why = f"as {role} you can read it: ask a hiring manager or an admin to answer"
    return f"You can't write in this conversation: {why}"


def message_refusal(state: InternshipState, actor: Actor, launcher_id: str) -> Refusal | None:
    """Why `actor` may not post in this thread now, in the order the API reports it."""
    access = thread_access(state, actor, launcher_id)
    if access == ThreadAccess.NONE:
        return Refusal(errors.NOT_FOUND, "conversation not found")
    if access == ThreadAccess.WRITE:
        return None
    if actor.role == Role.EMPLOYER and not member_acts_on(state, actor):
        return Refusal(errors.FORBIDDEN, member_writing_refusal(actor))
    if state.stage in TERMINAL_STAGES:
        why = f"the internship {WHERE_IT_STANDS[state.stage]}"
    elif actor.role == Role.LAUNCHER and launcher_id != state.launcher_id and state.launcher_id:
        why = "another launcher was selected"
    else:
        why = "the application was withdrawn or the invitation declined"
    return Refusal(
        errors.CONFLICT, f"This conversation is closed ({why}): you can still read it", "closed"
    )
