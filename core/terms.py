"""The terms of one internship: what its posting promises both parties, pinned when it was posted.

The API snapshots the policies in force into each posting (`Posting.policy`); the terms are what
that snapshot, the fee and the duration promise, said once, here: the internship's page and its
JSON view show them, the kickoff email lists them, and the launcher (applying) and the employer
(kicking off) accept them by their hash, which the workflow checks and records on the timeline.
They are built from the internship's own posting, so a change of policy for new internships
never changes them.

Pure (no I/O, no clock): the workflow computes the hash in its validators too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core import errors, rulebook
from core.formats import format_money, plural, policy_duration
from core.internship import InternshipState, Posting

# Hex digits of the hash people read: "Terms ref. …" on the page and in the kickoff email, and
# the timeline's note of an acceptance ("sha256:" and these).
REF_LENGTH = 16
# The refusal's code (409) when the terms a caller accepted are not this internship's.
TERMS_CHANGED = "terms_changed"
TERMS_CHANGED_MESSAGE = (
    "The terms you accepted are not this internship's: read its terms again (the internship's "
    "`terms`) and accept those"
)
OUTCOME_WORDS = {
    "pay_launcher": "the launcher is paid their share in full",
    "refund": "the employer is refunded in full",
}


@dataclass(frozen=True)
class Terms:
    """What both parties agree to. Durations are as agreed (before TIME_SCALE, which only
    speeds up a demo's clock)."""

    fee_cents: int
    currency: str
    launcher_share_percent: int
    launcher_share_cents: int  # paid to the launcher once the work is approved
    platform_fee_cents: int  # the rest of the fee
    duration_days: int  # from kickoff to the due date
    review_auto_approve: timedelta  # submitted work not reviewed by then is approved
    max_revision_rounds: int  # another request goes to ops as a dispute
    revision_time: timedelta  # the least a revision round gives the launcher
    max_extension: timedelta  # past the original due date
    overdue_escalation: timedelta  # after the due date: ops are asked to step in
    overdue_cancel: timedelta  # after the due date: cancelled and refunded
    # Internships started since the workflow's `delivered-work-kept` patch (every new one):
    # delivered work is refunded only by ops, and a dispute undecided after `dispute_decision`
    # comes to its default outcome. Before it: disputes waited for ops with no deadline
    # (`dispute_decision` None), and the employer could cancel with a refund until approval.
    delivered_work_kept: bool
    dispute_decision: timedelta | None

    def values(self) -> dict[str, Any]:
        """The terms as plain values (the JSON view's, and what the hash is of): durations in
        seconds."""
        kept = self.delivered_work_kept
        return {
            "fee_cents": self.fee_cents,
            "currency": self.currency,
            "launcher_share_percent": self.launcher_share_percent,
            "launcher_share_cents": self.launcher_share_cents,
            "platform_fee_cents": self.platform_fee_cents,
            "duration_days": self.duration_days,
            "review_auto_approve_seconds": _seconds(self.review_auto_approve),
            "max_revision_rounds": self.max_revision_rounds,
            "revision_time_seconds": _seconds(self.revision_time),
            "max_extension_seconds": _seconds(self.max_extension),
            "overdue_escalation_seconds": _seconds(self.overdue_escalation),
            "overdue_cancel_seconds": _seconds(self.overdue_cancel),
            "delivered_work_refunded_by_ops_only": kept,
            "dispute_decision_seconds": _seconds(self.dispute_decision)
            if self.dispute_decision is not None
            else None,
            "dispute_default_if_delivered": rulebook.DISPUTE_DEFAULT_IF_DELIVERED if kept else None,
            "dispute_default_if_not_delivered": rulebook.DISPUTE_DEFAULT_IF_NOT_DELIVERED
            if kept
            else None,
        }

    @property
    def hash(self) -> str:
        """sha256 (hex) of the values as canonical JSON: sorted keys, no spaces."""
        canonical = json.dumps(self.values(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def ref(self) -> str:
        """The hash's first hex digits, as people read them ("Terms ref. …")."""
        return self.hash[:REF_LENGTH]

    def lines(self) -> list[tuple[str, str]]:
        """(label, sentence) for each term, as people read them."""

        def money(cents: int) -> str:
            return format_money(cents, self.currency)

        rounds = self.max_revision_rounds
        if rounds:
            revisions = (
                f"The employer may ask for up to {plural(rounds, 'revision round')}, each giving "
                f"the launcher at least {policy_duration(self.revision_time)}; asking for "
                "another goes to ops as a dispute."
            )
        else:
            revisions = "No revision rounds: asking for a revision goes to ops as a dispute."
        late = (
            f"Work not submitted by the due date is overdue. Ops are asked to step in "
            f"{policy_duration(self.overdue_escalation)} after it, and "
            f"{policy_duration(self.overdue_cancel)} after it the internship is cancelled and "
            "the employer's fee refunded in full"
        )
        disputes = "Either party may open a dispute while the work is in progress or in review."
        decide = "pay the launcher their share, split it, or refund the employer"
        if self.delivered_work_kept and self.dispute_decision is not None:
            late += " (if earlier work was delivered, ops decide instead)."
            paid = OUTCOME_WORDS[rulebook.DISPUTE_DEFAULT_IF_DELIVERED]
            refunded = OUTCOME_WORDS[rulebook.DISPUTE_DEFAULT_IF_NOT_DELIVERED]
            disputes += (
                f" Ops decide it: {decide}. If they have not decided within "
                f"{policy_duration(self.dispute_decision)}: if work was delivered, {paid}; "
                f"if not, {refunded}."
            )
            refunds = (
                "Until work is delivered, the employer may cancel and is refunded what was "
                "charged in full. Once work is delivered, only ops can refund it: a cancellation "
                "goes to them as a dispute."
            )
        else:
            late += "."
            disputes += f" Ops decide it, with no deadline: {decide}."
            refunds = (
                "Until the work is approved, the employer may cancel and is refunded what was "
                "charged in full."
            )
        return [
            ("Fee", f"{money(self.fee_cents)}, charged to the employer's card at kickoff."),
            (
                "Launcher's share",
                f"{self.launcher_share_percent}% of the fee, "
                f"{money(self.launcher_share_cents)}, paid to the launcher once the work is "
                "approved.",
            ),
            (
                "Platform fee",
                f"{money(self.platform_fee_cents)} "
                f"({100 - self.launcher_share_percent}% of the fee), kept by the platform.",
            ),
            ("Time to deliver", f"{plural(self.duration_days, 'day')} from kickoff."),
            (
                "Review",
                f"The employer reviews submitted work within "
                f"{policy_duration(self.review_auto_approve)}; work not reviewed by then is "
                "approved automatically and the launcher paid.",
            ),
            ("Revisions", revisions),
            (
                "Extensions",
                f"The employer or ops may move the due date up to "
                f"{policy_duration(self.max_extension)} past the original one.",
            ),
            ("Late work", late),
            ("Disputes", disputes),
            (
                "Splits",
                "A split pays the launcher part of their share and refunds the employer the "
                "rest of the fee: the platform keeps its fee only on the launcher's part.",
            ),
            ("Refunds", refunds),
        ]


def _seconds(duration: timedelta) -> int:
    return round(duration.total_seconds())


def terms_of(posting: Posting, *, delivered_work_kept: bool = True) -> Terms:
    """The terms of an internship posted so (`delivered_work_kept`: as every internship started
    since the workflow's patch of that name; `terms_in` reads it from the state)."""
    p = posting.policy
    share = p.launcher_share(posting.fee_cents)
    return Terms(
        fee_cents=posting.fee_cents,
        currency=posting.currency,
        launcher_share_percent=p.launcher_share_percent,
        launcher_share_cents=share,
        platform_fee_cents=posting.fee_cents - share,
        duration_days=posting.duration_days,
        review_auto_approve=p.review_auto_approve,
        max_revision_rounds=p.max_revision_rounds,
        revision_time=p.revision_time,
        max_extension=p.max_extension,
        overdue_escalation=p.overdue_escalation,
        overdue_cancel=p.overdue_cancel,
        delivered_work_kept=delivered_work_kept,
        dispute_decision=p.dispute_decision if delivered_work_kept else None,
    )


def terms_in(state: InternshipState) -> Terms:
    """The terms of the internship whose workflow holds `state`."""
    return terms_of(state.posting, delivered_work_kept=state.delivered_work_kept)


def terms_hash(posting: Posting, *, delivered_work_kept: bool = True) -> str:
    return terms_of(posting, delivered_work_kept=delivered_work_kept).hash


def acceptance_refusal(state: InternshipState, accepted: str) -> rulebook.Refusal | None:
    """Why the terms a caller accepted (`accepted`, their hash) are refused: they are not this
    internship's. None if they are, or if none were named (requests from before terms were
    accepted explicitly)."""
    if not accepted or accepted == terms_in(state).hash:
        return None
    return rulebook.Refusal(errors.CONFLICT, TERMS_CHANGED_MESSAGE, TERMS_CHANGED)


def accepted_note(accepted: str) -> str:
    """What the timeline notes of an acceptance (the application's, the kickoff's)."""
    return f"Accepted the terms sha256:{accepted[:REF_LENGTH]}"


def email_context(terms: Terms) -> dict[str, Any]:
    """The terms as an email lists them (`details["terms"]` of the kickoff email): `lines`,
    (label, sentence) pairs, and `ref`, the hash as people read it."""
    return {"lines": terms.lines(), "ref": terms.ref}
